"""The Exporter on S3: a multipart upload fed chunk by chunk, then a presigned link."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

PART_SIZE = 5 * 1024 * 1024  # S3's smallest part: memory holds at most about this much
LINK_SECONDS = 900


class S3Exporter:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def upload(self, shop_id: str, name: str, chunks: Iterable[bytes]) -> str:
        # The shop's prefix and a random id: a link reaches one object of one shop, and two
        # exports in the same second never share a key (the file name is only what is shown).
        key = f"exports/{shop_id}/{secrets.token_urlsafe(16)}/{name}"
        kind = {"ContentType": "text/csv; charset=utf-8"}
        upload = self._s3.create_multipart_upload(Bucket=self._bucket, Key=key, **kind)
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        try:
            for chunk in chunks:
                buffer += chunk
                if len(buffer) >= PART_SIZE:
                    parts.append(self._part(key, upload["UploadId"], len(parts) + 1, buffer))
                    buffer = bytearray()
            if buffer or not parts:
                parts.append(self._part(key, upload["UploadId"], len(parts) + 1, buffer))
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
        except Exception:
            self._s3.abort_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload["UploadId"]
            )
            raise
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{name}"',
                },
                ExpiresIn=LINK_SECONDS,
            )
        )

    def _part(self, key: str, upload_id: str, number: int, data: bytearray) -> dict[str, Any]:
        answer = self._s3.upload_part(
            Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(data)
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}
