"""Denmark, CVR system-to-system access, ``POST /cvr/cvr-permanent/virksomhed/_search``.

An Elasticsearch endpoint behind HTTP Basic auth, as Erhvervsstyrelsen runs it. The simulator
understands the queries a lookup by number sends: ``{"query": {"term":
{"Vrvirksomhed.cvrNummer": N}}}`` (also ``match`` and a ``bool``/``must`` of one such clause),
honours ``_source`` (a list of field paths) and ``size``, and answers
``{"took", "timed_out", "_shards", "hits": {"total", "max_score", "hits": [{"_source":
{"Vrvirksomhed": ...}}]}}`` with ``virksomhedMetadata`` (``nyesteNavn``,
``nyesteVirksomhedsform``, ``nyesteBeliggenhedsadresse``, ``sammensatStatus``, ...),
``livsforloeb``, ``virksomhedsstatus`` and ``navne``. No hit is ``hits: []``. Wrong credentials
are 401 with an Elasticsearch ``security_exception``; a query it does not understand is 400
``parsing_exception``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .routes import basic_auth, state

SOURCE = "cvr"
PREFIX = "/cvr"

bp = Blueprint("registers_simulator_cvr", __name__, url_prefix=PREFIX)


def _period(start: str | None, end: str | None) -> dict[str, Any]:
    return {"gyldigFra": start, "gyldigTil": end}


def render(r: dict[str, Any]) -> dict[str, Any]:
    """A demo company as a ``Vrvirksomhed`` document."""
    period = _period(r.get("founded"), r.get("ended"))
    a = r.get("address", {})
    address = {
        "landekode": "DK", "fritekst": None, "husnummerFra": a.get("number"),
        "husnummerTil": None, "bogstavFra": None, "bogstavTil": None, "etage": None,
        "sidedoer": None, "conavn": None, "postboks": None, "vejnavn": a.get("street"),
        "bynavn": None, "postnummer": a.get("postal_code"), "postdistrikt": a.get("district"),
        "kommune": {"kommuneNavn": a.get("municipality")}, "periode": period,
    }
    form = {"virksomhedsformkode": r["form_code"], "kortBeskrivelse": r["form_short"],
            "langBeskrivelse": r["form_long"], "ansvarligDataleverandoer": "E&S",
            "periode": period}
    return {
        "cvrNummer": int(r["cvr"]),
        "navne": [{"navn": r["name"], "periode": period}],
        "livsforloeb": [{"periode": period}],
        "virksomhedsstatus": [{"status": r["status"], "periode": period}],
        "virksomhedsform": [form],
        "beliggenhedsadresse": [address],
        "virksomhedMetadata": {
            "nyesteNavn": {"navn": r["name"], "periode": period},
            "nyesteBinavne": [],
            "nyesteVirksomhedsform": form,
            "nyesteBeliggenhedsadresse": address,
            "nyesteStatus": None,
            "sammensatStatus": r["status"],
            "stiftelsesDato": r.get("founded"),
            "virkningsDato": r.get("founded"),
        },
        "enhedsNummer": 4000000000 + int(r["cvr"]) % 100000000,
        "enhedstype": "VIRKSOMHED",
    }


def _select(document: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Keep only the ``_source`` paths asked for (``Vrvirksomhed.field``)."""
    selected: dict[str, Any] = {}
    for path in paths:
        parts = path.split(".")
        node: Any = document
        target = selected
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
            if i == len(parts) - 1:
                target[part] = node
            else:
                target = target.setdefault(part, {})
    return selected


def _wanted_number(query: Any) -> str | None:
    """The CVR number a supported query asks for; None when the query is not understood."""
    if not isinstance(query, dict):
        return None
    if "bool" in query and isinstance(query["bool"].get("must"), list) and len(
        query["bool"]["must"]
    ) == 1:
        return _wanted_number(query["bool"]["must"][0])
    for clause in ("term", "match"):
        body = query.get(clause)
        if isinstance(body, dict) and "Vrvirksomhed.cvrNummer" in body:
            value = body["Vrvirksomhed.cvrNummer"]
            if isinstance(value, dict):
                value = value.get("value", value.get("query"))
            return str(value)
    return None


def _es_error(status: int, kind: str, reason: str) -> tuple[Response, int]:
    return jsonify(error={"root_cause": [{"type": kind, "reason": reason}], "type": kind,
                          "reason": reason}, status=status), status


@bp.post("/cvr-permanent/virksomhed/_search")
def search() -> Response | tuple[Response, int]:
    """An Elasticsearch search of companies by CVR number."""
    creds = state().credentials
    if basic_auth() != (creds["cvr_username"], creds["cvr_password"]):
        response, status = _es_error(401, "security_exception",
                                     "unable to authenticate user for REST request")
        response.headers["WWW-Authenticate"] = 'Basic realm="security" charset="UTF-8"'
        return response, status
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _es_error(400, "parsing_exception", "request body is required")
    wanted = _wanted_number(body.get("query"))
    if wanted is None:
        return _es_error(400, "parsing_exception", "unsupported query")
    record = state().records[SOURCE].get(wanted)
    hits = []
    if record is not None and body.get("size", 10) != 0:
        source = {"Vrvirksomhed": render(record)}
        if isinstance(body.get("_source"), list):
            source = _select(source, body["_source"])
        hits.append({"_index": "cvr-v-20220630", "_type": "_doc",
                     "_id": str(4000000000 + int(wanted) % 100000000), "_score": 12.4,
                     "_source": source})
    return jsonify(took=1, timed_out=False,
                   _shards={"total": 6, "successful": 6, "skipped": 0, "failed": 0},
                   hits={"total": len(hits), "max_score": 12.4 if hits else None, "hits": hits})
