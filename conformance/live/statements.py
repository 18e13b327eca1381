"""SQL the live checks and the fault drills run as the service would: its write path, one
request from arrival to completion, as the app account runs it."""

from __future__ import annotations

from conformance.plan import figure

SCHEMA = figure("schema").expected

# One request, with psycopg's named parameters (request_id, line, customer): what the
# drills send many times, and what WRITE_PATH below spells out once for the live checks.
REQUEST = [
    f"INSERT INTO {SCHEMA}.pc_product_change_history (request_id, line_number, customer_id, current_product_code, "
    "target_product_code) VALUES (%(request_id)s, %(line)s, %(customer)s, 'PLAN-A', 'PLAN-B')",
    f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'VALIDATED', validated_at = now(), "
    "version = version + 1 WHERE request_id = %(request_id)s",
    f"INSERT INTO {SCHEMA}.pc_kos_integration_log (request_id, integration_type, method, endpoint_url, "
    "response_status, response_time_ms, is_success) VALUES (%(request_id)s, 'PRODUCT_CHANGE', 'POST', '/kos/change', "
    "200, 35, true)",
    f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'COMPLETED', processed_at = now(), "
    "version = version + 1 WHERE request_id = %(request_id)s",
]
# What a finished request's row holds beside its own values (the steps above: version 0, +1 twice).
FINISHED = {"current_product_code": "PLAN-A", "target_product_code": "PLAN-B", "process_status": "COMPLETED",
            "version": 2}
LIVE_REQUEST = {"request_id": "live-check-1", "line": "01012345678", "customer": "CUST-1"}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


WRITE_PATH = [step % {k: _literal(v) for k, v in LIVE_REQUEST.items()} for step in REQUEST] + [
    f"UPDATE {SCHEMA}.pc_circuit_breaker_state SET success_count = success_count + 1 WHERE service_name = 'KOS_CHANGE'",
    f"SELECT * FROM {SCHEMA}.v_product_change_summary",
]
