"""Uploads: the request body read into memory, refused (413) past its limit, and a multipart form's photo and
fields, without FastAPI's form handling (which would spool a large photo to a temporary file on disk)."""
from __future__ import annotations

import logging
import sys

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from .errors import ApiError

log = logging.getLogger("idphoto.web")


class _InMemoryParser(MultiPartParser):
    # Uploaded photos are personal data: file parts stay in memory (the body is already capped in size)
    # instead of rolling over to a temporary file on disk past 1 MB.
    spool_max_size = sys.maxsize


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request too large: {int(declared) / 2**20:.1f} MB, the limit is {limit / 2**20:g} MB")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request too large: over the limit of {limit / 2**20:g} MB")
            chunks.append(chunk)
    except ClientDisconnect:  # the client went away mid-upload: one log line, not a traceback
        log.info("client disconnected during the upload to %s after %d bytes", request.url.path, size)
        raise ApiError(400, "the client disconnected during the upload") from None
    return b"".join(chunks)


async def read_form(request: Request, limit: int, file_field: str) -> tuple[bytes, dict[str, str]]:
    """(bytes of the uploaded file ``file_field``, the other fields as text) of a multipart request."""
    body = await read_body(request, limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, f"send multipart/form-data with the image in a file field named '{file_field}'")

    async def stream():
        yield body

    try:
        form = await _InMemoryParser(request.headers, stream(), max_files=1, max_fields=64,
                                     max_part_size=64 * 1024).parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart request: {exc.message}") from None
    fields, data = {}, None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != file_field:
                raise ApiError(400, f"unexpected file field {key!r}; send the image as '{file_field}'")
            data = await value.read()
            await value.close()
        else:
            fields[key] = value
    if data is None:
        raise ApiError(400, f"no image: send it in a file field named '{file_field}'")
    return data, fields


def multipart_doc(file_field: str, description: str, fields: dict, media: dict) -> dict:
    """OpenAPI for an endpoint that reads its multipart form itself (so that uploads never touch the disk)."""
    properties = {file_field: {"type": "string", "format": "binary", "description": description}, **fields}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"type": "object", "required": [file_field], "properties": properties}}}},
        "responses": {"200": {"description": "OK", "content": media},
                      "4XX": {"description": "bad input: {\"error\": \"one line\"}"},
                      "503": {"description": "busy (see Retry-After)"}},
    }
