-- Initial Circuit Breaker state (schema-spec "Initial data"). Re-running inserts nothing and
-- leaves rows the service has since updated as they are.
SET ROLE product_change_admin;

INSERT INTO product_change.pc_circuit_breaker_state
       (service_name, state, failure_threshold, success_threshold, timeout_duration_ms)
VALUES ('KOS_CUSTOMER', 'CLOSED', 5, 3, 60000),
       ('KOS_PRODUCT', 'CLOSED', 5, 3, 60000),
       ('KOS_CHANGE', 'CLOSED', 10, 5, 120000)
ON CONFLICT (service_name) DO NOTHING;

RESET ROLE;
