"""cancelflow: cancel and refund KCP payments. The domain imports no AWS SDK; adapters do."""
