"""The ``/_sim/`` control routes every simulator serves, over its own state object.

``GET /_sim/health``, ``GET /_sim/stats``, ``POST /_sim/reset`` (zero the statistics, return
them), ``GET /_sim/config`` and ``PATCH /_sim/config`` (merge a JSON object into the knobs; 400
on an unknown knob or a bad value). Tests and benchmarks drive the simulators through these.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import Blueprint, Response, current_app, jsonify, request


class SimulatorState(Protocol):
    """What the control routes need of a simulator's state."""

    def stats_snapshot(self) -> dict[str, Any]: ...
    def reset_stats(self) -> None: ...
    def get_config(self) -> dict[str, Any]: ...
    def patch_config(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge ``patch``; raise ``ValueError`` for an unknown knob or a bad value."""
        ...


def control_blueprint(name: str, extension: str) -> Blueprint:
    """The control routes of the simulator whose state is ``app.extensions[extension]``."""
    bp = Blueprint(name, __name__)

    def state() -> SimulatorState:
        sim: SimulatorState = current_app.extensions[extension]
        return sim

    @bp.get("/_sim/health")
    def sim_health() -> Response:
        return jsonify(status="ok")

    @bp.get("/_sim/stats")
    def sim_stats() -> Response:
        return jsonify(state().stats_snapshot())

    @bp.post("/_sim/reset")
    def sim_reset() -> Response:
        state().reset_stats()
        return jsonify(state().stats_snapshot())

    @bp.get("/_sim/config")
    def sim_config() -> Response:
        return jsonify(state().get_config())

    @bp.patch("/_sim/config")
    def sim_config_patch() -> tuple[Response, int] | Response:
        patch = request.get_json(silent=True)
        if not isinstance(patch, dict):
            return jsonify(error="send a JSON object"), 400
        try:
            return jsonify(state().patch_config(patch))
        except ValueError as exc:
            return jsonify(error=str(exc)), 400

    return bp
