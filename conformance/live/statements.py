"""SQL the live checks run as the service would: its write path, one request from arrival
to completion, as the app account runs it."""

from __future__ import annotations

from conformance.plan import figure

SCHEMA = figure("schema").expected

WRITE_PATH = [
    f"INSERT INTO {SCHEMA}.pc_product_change_history (request_id, line_number, customer_id, current_product_code, "
    "target_product_code) VALUES ('live-check-1', '01012345678', 'CUST-1', 'PLAN-A', 'PLAN-B')",
    f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'VALIDATED', validated_at = now(), "
    "version = version + 1 WHERE request_id = 'live-check-1'",
    f"INSERT INTO {SCHEMA}.pc_kos_integration_log (request_id, integration_type, method, endpoint_url, "
    "response_status, response_time_ms, is_success) VALUES ('live-check-1', 'PRODUCT_CHANGE', 'POST', '/kos/change', 200, 35, true)",
    f"UPDATE {SCHEMA}.pc_product_change_history SET process_status = 'COMPLETED', processed_at = now(), "
    "version = version + 1 WHERE request_id = 'live-check-1'",
    f"UPDATE {SCHEMA}.pc_circuit_breaker_state SET success_count = success_count + 1 WHERE service_name = 'KOS_CHANGE'",
    f"SELECT * FROM {SCHEMA}.v_product_change_summary",
]
