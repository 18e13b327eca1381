-- Schema product_change (schema-spec: tables, indexes, functions, triggers, views).
-- Created as product_change_admin, so that the admin owns the schema and every object in it.
-- Idempotent: IF NOT EXISTS / OR REPLACE throughout.

SET ROLE product_change_admin;

CREATE SCHEMA IF NOT EXISTS product_change AUTHORIZATION product_change_admin;
COMMENT ON SCHEMA product_change IS 'Product-Change service: change requests, KOS calls, circuit breakers';

-- Tables --------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS product_change.pc_product_change_history (
    id                   bigserial    NOT NULL,
    request_id           varchar(50)  NOT NULL DEFAULT gen_random_uuid()::text,
    line_number          varchar(20)  NOT NULL,
    customer_id          varchar(50)  NOT NULL,
    current_product_code varchar(20)  NOT NULL,
    target_product_code  varchar(20)  NOT NULL,
    process_status       varchar(20)  NOT NULL DEFAULT 'REQUESTED',
    validation_result    text,
    process_message      text,
    kos_request_data     jsonb,
    kos_response_data    jsonb,
    requested_at         timestamptz  NOT NULL DEFAULT now(),
    validated_at         timestamptz,
    processed_at         timestamptz,
    created_at           timestamptz  NOT NULL DEFAULT now(),
    updated_at           timestamptz  NOT NULL DEFAULT now(),
    version              bigint       NOT NULL DEFAULT 0,
    CONSTRAINT pc_product_change_history_pkey PRIMARY KEY (id),
    CONSTRAINT pc_product_change_history_request_id_key UNIQUE (request_id),
    CONSTRAINT pc_product_change_history_process_status_check CHECK (
        process_status IN ('REQUESTED', 'VALIDATED', 'PROCESSING', 'COMPLETED', 'FAILED'))
);

COMMENT ON TABLE product_change.pc_product_change_history IS 'Every product-change request and its processing';
COMMENT ON COLUMN product_change.pc_product_change_history.id IS 'Surrogate key';
COMMENT ON COLUMN product_change.pc_product_change_history.request_id IS 'Request identifier (UUID text), unique';
COMMENT ON COLUMN product_change.pc_product_change_history.line_number IS 'Subscriber line number';
COMMENT ON COLUMN product_change.pc_product_change_history.customer_id IS 'Customer identifier';
COMMENT ON COLUMN product_change.pc_product_change_history.current_product_code IS 'Product before the change';
COMMENT ON COLUMN product_change.pc_product_change_history.target_product_code IS 'Product requested';
COMMENT ON COLUMN product_change.pc_product_change_history.process_status IS 'REQUESTED, VALIDATED, PROCESSING, COMPLETED or FAILED';
COMMENT ON COLUMN product_change.pc_product_change_history.validation_result IS 'Outcome of the validation step';
COMMENT ON COLUMN product_change.pc_product_change_history.process_message IS 'Message of the processing step';
COMMENT ON COLUMN product_change.pc_product_change_history.kos_request_data IS 'Request sent to KOS';
COMMENT ON COLUMN product_change.pc_product_change_history.kos_response_data IS 'Response received from KOS';
COMMENT ON COLUMN product_change.pc_product_change_history.requested_at IS 'When the request arrived';
COMMENT ON COLUMN product_change.pc_product_change_history.validated_at IS 'When it was validated';
COMMENT ON COLUMN product_change.pc_product_change_history.processed_at IS 'When processing ended';
COMMENT ON COLUMN product_change.pc_product_change_history.created_at IS 'Row creation time';
COMMENT ON COLUMN product_change.pc_product_change_history.updated_at IS 'Last update time, kept by trigger';
COMMENT ON COLUMN product_change.pc_product_change_history.version IS 'Optimistic lock version';

CREATE TABLE IF NOT EXISTS product_change.pc_kos_integration_log (
    id                    bigserial     NOT NULL,
    request_id            varchar(50),
    integration_type      varchar(30)   NOT NULL,
    method                varchar(10)   NOT NULL,
    endpoint_url          varchar(200)  NOT NULL,
    request_headers       jsonb,
    request_body          jsonb,
    response_status       integer,
    response_headers      jsonb,
    response_body         jsonb,
    response_time_ms      integer,
    is_success            boolean       NOT NULL DEFAULT false,
    error_message         text,
    retry_count           integer       NOT NULL DEFAULT 0,
    circuit_breaker_state varchar(20),
    created_at            timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT pc_kos_integration_log_pkey PRIMARY KEY (id),
    CONSTRAINT pc_kos_integration_log_integration_type_check CHECK (
        integration_type IN ('CUSTOMER_INFO', 'PRODUCT_INFO', 'PRODUCT_CHANGE')),
    CONSTRAINT pc_kos_integration_log_method_check CHECK (
        method IN ('GET', 'POST', 'PUT', 'DELETE')),
    CONSTRAINT pc_kos_integration_log_circuit_breaker_state_check CHECK (
        circuit_breaker_state IN ('CLOSED', 'OPEN', 'HALF_OPEN'))
);

COMMENT ON TABLE product_change.pc_kos_integration_log IS 'Every call to the external KOS system';
COMMENT ON COLUMN product_change.pc_kos_integration_log.id IS 'Surrogate key';
COMMENT ON COLUMN product_change.pc_kos_integration_log.request_id IS 'Related product-change request';
COMMENT ON COLUMN product_change.pc_kos_integration_log.integration_type IS 'CUSTOMER_INFO, PRODUCT_INFO or PRODUCT_CHANGE';
COMMENT ON COLUMN product_change.pc_kos_integration_log.method IS 'HTTP method';
COMMENT ON COLUMN product_change.pc_kos_integration_log.endpoint_url IS 'KOS endpoint called';
COMMENT ON COLUMN product_change.pc_kos_integration_log.request_headers IS 'Request headers';
COMMENT ON COLUMN product_change.pc_kos_integration_log.request_body IS 'Request body';
COMMENT ON COLUMN product_change.pc_kos_integration_log.response_status IS 'HTTP status';
COMMENT ON COLUMN product_change.pc_kos_integration_log.response_headers IS 'Response headers';
COMMENT ON COLUMN product_change.pc_kos_integration_log.response_body IS 'Response body';
COMMENT ON COLUMN product_change.pc_kos_integration_log.response_time_ms IS 'Response time in milliseconds';
COMMENT ON COLUMN product_change.pc_kos_integration_log.is_success IS 'Whether the call succeeded';
COMMENT ON COLUMN product_change.pc_kos_integration_log.error_message IS 'Error, when it failed';
COMMENT ON COLUMN product_change.pc_kos_integration_log.retry_count IS 'Retries made';
COMMENT ON COLUMN product_change.pc_kos_integration_log.circuit_breaker_state IS 'Breaker state at call time';
COMMENT ON COLUMN product_change.pc_kos_integration_log.created_at IS 'When the call was logged';

CREATE TABLE IF NOT EXISTS product_change.pc_circuit_breaker_state (
    id                  bigserial    NOT NULL,
    service_name        varchar(50)  NOT NULL,
    state               varchar(20)  NOT NULL DEFAULT 'CLOSED',
    failure_count       integer      NOT NULL DEFAULT 0,
    success_count       integer      NOT NULL DEFAULT 0,
    last_failure_time   timestamptz,
    next_attempt_time   timestamptz,
    failure_threshold   integer      NOT NULL DEFAULT 5,
    success_threshold   integer      NOT NULL DEFAULT 3,
    timeout_duration_ms integer      NOT NULL DEFAULT 60000,
    updated_at          timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT pc_circuit_breaker_state_pkey PRIMARY KEY (id),
    CONSTRAINT pc_circuit_breaker_state_service_name_key UNIQUE (service_name),
    CONSTRAINT pc_circuit_breaker_state_service_name_check CHECK (
        service_name IN ('KOS_CUSTOMER', 'KOS_PRODUCT', 'KOS_CHANGE')),
    CONSTRAINT pc_circuit_breaker_state_state_check CHECK (
        state IN ('CLOSED', 'OPEN', 'HALF_OPEN'))
);

COMMENT ON TABLE product_change.pc_circuit_breaker_state IS 'Circuit breaker state, one row per external service';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.id IS 'Surrogate key';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.service_name IS 'KOS_CUSTOMER, KOS_PRODUCT or KOS_CHANGE';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.state IS 'CLOSED, OPEN or HALF_OPEN';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.failure_count IS 'Consecutive failures';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.success_count IS 'Consecutive successes';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.last_failure_time IS 'Last failure';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.next_attempt_time IS 'When an OPEN breaker may try again';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.failure_threshold IS 'Failures that open the breaker';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.success_threshold IS 'Successes that close a HALF_OPEN breaker';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.timeout_duration_ms IS 'How long the breaker stays OPEN';
COMMENT ON COLUMN product_change.pc_circuit_breaker_state.updated_at IS 'Last update time, kept by trigger';

-- Indexes (12 with the primary keys and unique constraints above) -------------------------

CREATE INDEX IF NOT EXISTS idx_pc_history_line_status_date
    ON product_change.pc_product_change_history (line_number, process_status, requested_at DESC);
CREATE INDEX IF NOT EXISTS idx_pc_history_customer_date
    ON product_change.pc_product_change_history (customer_id, requested_at DESC);
CREATE INDEX IF NOT EXISTS idx_pc_history_status_date
    ON product_change.pc_product_change_history (process_status, requested_at DESC);
CREATE INDEX IF NOT EXISTS idx_kos_log_request_type_date
    ON product_change.pc_kos_integration_log (request_id, integration_type, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_kos_log_type_success_date
    ON product_change.pc_kos_integration_log (integration_type, is_success, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_kos_log_success_date
    ON product_change.pc_kos_integration_log (is_success, created_at DESC);
-- Serves cleanup_old_logs().
CREATE INDEX IF NOT EXISTS idx_kos_log_created_at
    ON product_change.pc_kos_integration_log (created_at);

-- Functions and triggers ---------------------------------------------------------------

CREATE OR REPLACE FUNCTION product_change.update_updated_at_column()
    RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION product_change.update_updated_at_column() IS 'Trigger: keeps updated_at current on every UPDATE';

CREATE OR REPLACE TRIGGER trg_pc_product_change_history_updated_at
    BEFORE UPDATE ON product_change.pc_product_change_history
    FOR EACH ROW EXECUTE FUNCTION product_change.update_updated_at_column();

CREATE OR REPLACE TRIGGER trg_pc_circuit_breaker_state_updated_at
    BEFORE UPDATE ON product_change.pc_circuit_breaker_state
    FOR EACH ROW EXECUTE FUNCTION product_change.update_updated_at_column();

CREATE OR REPLACE FUNCTION product_change.cleanup_old_logs()
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted integer;
BEGIN
    -- KOS call logs only: the change history is never deleted here.
    DELETE FROM product_change.pc_kos_integration_log
     WHERE created_at < now() - interval '12 months';
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
COMMENT ON FUNCTION product_change.cleanup_old_logs() IS 'Deletes KOS integration logs older than 12 months; returns how many';

-- Monitoring views ---------------------------------------------------------------------

CREATE OR REPLACE VIEW product_change.v_product_change_summary AS
SELECT process_status,
       count(*)                                                           AS request_count,
       count(*) FILTER (WHERE requested_at >= date_trunc('day', now()))   AS today_count,
       round(avg(extract(epoch FROM processed_at - requested_at)), 2)     AS avg_processing_time_sec
  FROM product_change.pc_product_change_history
 WHERE requested_at >= now() - interval '30 days'
 GROUP BY process_status;
COMMENT ON VIEW product_change.v_product_change_summary IS 'Requests per status over the last 30 days';

CREATE OR REPLACE VIEW product_change.v_kos_integration_summary AS
SELECT integration_type,
       count(*)                                                             AS total_requests,
       count(*) FILTER (WHERE is_success)                                   AS success_count,
       round(100.0 * count(*) FILTER (WHERE is_success) / count(*), 2)      AS success_rate,
       round(avg(response_time_ms), 2)                                      AS avg_response_time_ms,
       count(*) FILTER (WHERE created_at >= date_trunc('day', now()))       AS today_count
  FROM product_change.pc_kos_integration_log
 WHERE created_at >= now() - interval '7 days'
 GROUP BY integration_type;
COMMENT ON VIEW product_change.v_kos_integration_summary IS 'KOS calls per integration type over the last 7 days';

CREATE OR REPLACE VIEW product_change.v_circuit_breaker_status AS
SELECT service_name,
       state,
       failure_count,
       success_count,
       last_failure_time,
       next_attempt_time,
       updated_at,
       CASE
           WHEN state = 'OPEN' AND next_attempt_time <= now()       THEN 'READY_FOR_HALF_OPEN'
           WHEN state = 'HALF_OPEN' AND success_count >= success_threshold THEN 'READY_FOR_CLOSE'
           ELSE 'STABLE'
       END AS recommended_action
  FROM product_change.pc_circuit_breaker_state;
COMMENT ON VIEW product_change.v_circuit_breaker_status IS 'Circuit breakers with the recommended next action';

RESET ROLE;
