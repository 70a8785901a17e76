"""The baseline of the throughput benchmarks: a bare Flask JSON endpoint, nothing else."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/json")
def echo():  # noqa: ANN201
    body = request.get_json()
    return jsonify(status="valid", vat_number=body.get("vat_number"), cached=True)
