# Copyright: three-instance contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One S3 bucket (any S3 API: AWS, moto, MinIO) as the backup store, with boto3.

* :func:`connect` builds the client from module options (endpoint, region, credentials) and checks
  that the bucket answers, so that a wrong bucket or endpoint is one clear error naming it.
* :class:`S3Store` puts and gets objects with the options every write must carry (server-side
  encryption, storage class), lists prefixes in parallel, and streams any byte source into a
  **multipart upload** (:meth:`S3Store.stream_upload`): parts are read one at a time and uploaded by a
  few threads, so a dump of any size needs ``part_size x (threads + 1)`` of memory and no disk. The
  object appears only when the upload is completed; a killed process leaves no object.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    HAS_BOTO3 = True
except ImportError:  # reported by the modules with missing_required_lib
    HAS_BOTO3 = False
    BotoCoreError = ClientError = Exception

MIB = 1024 * 1024


def store_arg() -> dict:
    """The one ``store`` option of every module that talks to a store (doc fragment lms_store): the
    backup modules (an S3 bucket) and the release modules (a bucket or a folder) take the same dict,
    so one ``backup_store``/``release_store`` variable is passed whole. ``prefix`` has no default
    here: each family has its own (lms-backups, releases/)."""
    return {
        "type": "dict",
        "required": True,
        "options": {
            # dir: the release modules only (connect() refuses it)
            "type": {"type": "str", "choices": ["s3", "dir"], "default": "s3"},
            "path": {"type": "path"},
            "bucket": {"type": "str"},
            "prefix": {"type": "str"},
            "endpoint_url": {"type": "str"},
            "region": {"type": "str"},
            "access_key": {"type": "str", "no_log": True},
            "secret_key": {"type": "str", "no_log": True},
            "session_token": {"type": "str", "no_log": True},
            "ca_bundle": {"type": "path"},
            "encryption": {"type": "str", "default": "AES256", "choices": ["none", "AES256", "aws:kms"]},
            "kms_key_id": {"type": "str"},
            "storage_class": {"type": "str", "default": "STANDARD"},
            "threads": {"type": "int", "default": 8},
        },
        "required_if": [
            ("type", "dir", ["path"]),
            ("type", "s3", ["bucket"]),
            ("encryption", "aws:kms", ["kms_key_id"]),
        ],
    }


#: The store option of the backup modules.
BACKUP_STORE_ARGS = {"store": store_arg()}


def store_defaults(spec: dict, given: dict) -> dict:
    """``given`` completed with the defaults of ``spec`` (a store_arg), as AnsibleModule would for
    the suboptions: for the backup timer's script, which runs without AnsibleModule."""
    unknown = sorted(set(given) - set(spec["options"]))
    if unknown:
        raise StoreError(f"store: unknown keys {', '.join(unknown)}")
    return {**{name: opts.get("default") for name, opts in spec["options"].items()}, **given}


class StoreError(Exception):
    """The bucket refused or failed something; ``str()`` names the bucket and key."""


def is_missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound")


def client_config(threads: int):
    """Connections for ``threads`` workers, standard retries, and checksums only where S3 requires
    them: every object's sha256/SHA-1 is in the manifest and checked end to end on restore, and
    botocore's default CRC per request (since 1.36) cost 30 % of the time of uploading many small
    objects (docs/backups.md, benchmark). Older botocore (Debian 12's 1.29, which the hosts' backup
    timer runs) has no such default and no such options."""
    base = {"max_pool_connections": threads + 4, "retries": {"max_attempts": 5, "mode": "standard"}}
    try:
        return Config(
            **base, request_checksum_calculation="when_required", response_checksum_validation="when_required"
        )
    except TypeError:
        return Config(**base)


BUCKET_HINT = "playbooks/backup_bucket.yml creates the bucket"


def connect(params: dict, hint: str = BUCKET_HINT) -> S3Store:
    """An :class:`S3Store` for a ``store`` option (see :func:`store_arg`); ``hint`` ends the error
    when the bucket cannot be reached."""
    if params.get("type", "s3") != "s3":
        raise StoreError(f"store type {params.get('type')!r}: this store must be an S3 bucket (type s3)")
    if params.get("encryption") == "aws:kms" and not params.get("kms_key_id"):
        raise StoreError("encryption 'aws:kms' needs kms_key_id (the KMS key's id or ARN)")
    threads = max(1, params.get("threads") or 8)
    client = boto3.client(
        "s3",
        endpoint_url=params.get("endpoint_url") or None,
        # a private CA (an on-premises S3 API); None keeps botocore's bundle
        verify=params.get("ca_bundle") or None,
        region_name=params.get("region") or None,
        aws_access_key_id=params.get("access_key") or None,
        aws_secret_access_key=params.get("secret_key") or None,
        aws_session_token=params.get("session_token") or None,
        config=client_config(threads),
    )
    store = S3Store(
        client,
        params["bucket"],
        encryption=params.get("encryption") or "none",
        kms_key_id=params.get("kms_key_id"),
        storage_class=params.get("storage_class") or "STANDARD",
        threads=threads,
    )
    store.check_bucket(params.get("endpoint_url"), hint)
    return store


class S3Store:
    def __init__(
        self, client, bucket, encryption="none", kms_key_id=None, storage_class="STANDARD", threads=8
    ):
        self.client = client
        self.bucket = bucket
        self.encryption = encryption
        self.kms_key_id = kms_key_id
        self.storage_class = storage_class
        self.threads = threads
        self.bytes_uploaded = 0
        self._lock = threading.Lock()

    def check_bucket(self, endpoint_url=None, hint: str = BUCKET_HINT) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            where = f" at {endpoint_url}" if endpoint_url else ""
            raise StoreError(
                f"bucket '{self.bucket}'{where} cannot be reached ({exc}); check bucket, endpoint_url, "
                f"region and credentials ({hint})"
            ) from exc

    def write_args(self) -> dict:
        """Encryption and storage class for every object written."""
        args = {"StorageClass": self.storage_class}
        if self.encryption != "none":
            args["ServerSideEncryption"] = self.encryption
        if self.encryption == "aws:kms":
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_uploaded += size

    # ----- single objects ------------------------------------------------------------------------

    def put(self, key: str, body: bytes, content_type="application/octet-stream") -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **self.write_args()
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc
        self._count(len(body))

    def put_file(self, key: str, path: str, size: int) -> str:
        """Upload a (small or large) file in one PUT; returns the SHA-1 of what was sent."""
        with open(path, "rb") as handle:
            body = handle.read()
        self.put(key, body)
        return hashlib.sha1(body, usedforsecurity=False).hexdigest()

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc

    def get_range(self, key: str, offset: int, size: int) -> bytes:
        """``size`` bytes of ``key`` from ``offset`` (a file inside a pack)."""
        if size == 0:
            return b""
        try:
            return self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + size - 1}"
            )["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc

    def get_stream(self, key: str):
        """The body of ``key`` as a file-like stream."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc

    def head_size(self, key: str) -> int | None:
        """The object's size, ``None`` when it does not exist."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise StoreError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc

    def delete(self, keys: list[str]) -> None:
        """Delete keys, 1000 per request (the API's limit)."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                raise StoreError(f"cannot delete objects in s3://{self.bucket}: {exc}") from exc
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StoreError(f"cannot delete s3://{self.bucket}/{first['Key']}: {first.get('Message')}")

    # ----- listing ---------------------------------------------------------------------------------

    def list(self, prefix: str) -> dict[str, int]:
        """``{key: size}`` of every object under ``prefix``."""
        return {key: size for key, (size, _modified) in self.list_times(prefix).items()}

    def list_times(self, prefix: str) -> dict:
        """``{key: (size, last modified)}`` of every object under ``prefix``."""
        out = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for item in page.get("Contents", ()):
                    out[item["Key"]] = (item["Size"], item["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot list s3://{self.bucket}/{prefix}: {exc}") from exc
        return out

    def list_sharded(self, prefix: str, shards="0123456789abcdef") -> dict[str, int]:
        """:meth:`list` of ``prefix + shard`` for every shard, in parallel (content keys are hex)."""
        out = {}
        with ThreadPoolExecutor(self.threads) as pool:
            for part in pool.map(lambda shard: self.list(prefix + shard), shards):
                out.update(part)
        return out

    # ----- streams -----------------------------------------------------------------------------------

    def stream_upload(self, key: str, source, part_size: int = 16 * MIB, on_chunk=None, accept=None) -> int:
        """Upload everything ``source.read()`` gives as one multipart object; returns its size.

        ``on_chunk(bytes)`` sees every byte in order (for checksums). ``accept()``, asked once all
        parts are up, may refuse the object: then, as after any exception, the upload is aborted (no
        object, no parts kept) and -1 returned. Nothing is deleted, so a key without delete rights
        never leaves an object under a wrong name. Parts are uploaded by up to ``threads`` workers
        while the next part is read, so the producer (pg_dump, tar) keeps running.
        """
        args = self.write_args()
        try:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **args)["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"cannot start an upload to s3://{self.bucket}/{key}: {exc}") from exc
        in_flight = threading.BoundedSemaphore(self.threads)

        def upload_part(number, data):
            try:
                etag = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                )["ETag"]
                self._count(len(data))
                return {"PartNumber": number, "ETag": etag}
            finally:
                in_flight.release()

        size = 0
        futures = []
        try:
            with ThreadPoolExecutor(self.threads) as pool:
                number = 1
                while True:
                    data = read_full(source, part_size)
                    if not data and number > 1:
                        break
                    if on_chunk:
                        on_chunk(data)
                    size += len(data)
                    in_flight.acquire()
                    futures.append(pool.submit(upload_part, number, data))
                    if len(data) < part_size:
                        break
                    number += 1
                parts = [future.result() for future in futures]
            if accept is not None and not accept():
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                return -1
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as exc:
            for future in futures:
                future.cancel()
            # When this fails too, the bucket's lifecycle rule removes the abandoned parts.
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            if isinstance(exc, (ClientError, BotoCoreError)):
                raise StoreError(f"upload to s3://{self.bucket}/{key} failed: {exc}") from exc
            raise
        return size


def read_full(source, size: int) -> bytes:
    """Up to ``size`` bytes: pipes return short reads, parts must be full (S3's 5 MiB minimum)."""
    chunks = []
    left = size
    while left > 0:
        chunk = source.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
