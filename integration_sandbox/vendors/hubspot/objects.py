"""HubSpot objects read one page or one record at a time: `GET /crm/v3/objects/<type>[/<id>]`."""

from __future__ import annotations

from integration_sandbox.kit import Request, Response, dumps
from integration_sandbox.vendors.hubspot.core import HubSpotCore
from integration_sandbox.vendors.hubspot.definitions import LIST_MAX
from integration_sandbox.vendors.hubspot.values import is_true


class Objects(HubSpotCore):
    def _list(self, object_type: str, request: Request) -> Response:
        limit = self._int(request, request.arg("limit"), "limit", 10)
        limit = max(1, min(limit, LIST_MAX))
        archived = is_true(request.arg("archived"))
        collection = self.collections[object_type]
        after = request.arg("after")
        start = 0 if not after else collection.index_past_key(self._int(request, after, "after", 0))
        page, resume = collection.scan(start, limit, lambda r: bool(r.get("archived")) == archived)
        view, shape = self._view(object_type, request.args("properties"), request.args("associations"))
        body = b'{"results":' + self.render_list(object_type, page, view, shape)
        if resume is not None and page:
            cursor = page[-1]["id"]
            link = f"{request.base_url}{request.path}?limit={limit}&after={cursor}"
            if archived:
                link += "&archived=true"
            body += b',"paging":{"next":' + dumps({"after": cursor, "link": link}) + b"}"
        return Response(200, body + b"}")

    def _read(self, object_type: str, request: Request) -> Response:
        record = self._find(object_type, request.params["id"], request.arg("idProperty"))
        if record is None or bool(record.get("archived")) != is_true(request.arg("archived")):
            raise self._not_found(request, object_type, request.params["id"])
        view, shape = self._view(object_type, request.args("properties"), request.args("associations"))
        return Response(200, self.render(object_type, record, view, shape))
