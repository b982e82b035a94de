"""In-memory stand-ins for the ports, for the inner loop (unit and property tests).

Each fake is held to its real adapter by a contract suite (tests/unit/test_store_contract.py),
so a test that passes on a fake says something about the product.
"""
