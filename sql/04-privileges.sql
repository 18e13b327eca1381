-- Privileges of plan 9.2 (schema-spec "Accounts and privileges"). Everything is revoked and
-- granted again, so that a re-run also removes a privilege granted by hand.
SET ROLE product_change_admin;

REVOKE ALL ON SCHEMA product_change FROM PUBLIC, product_change_app, product_change_readonly;
GRANT USAGE ON SCHEMA product_change TO product_change_app, product_change_readonly;

REVOKE ALL ON ALL TABLES IN SCHEMA product_change FROM PUBLIC, product_change_app, product_change_readonly;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA product_change FROM PUBLIC, product_change_app, product_change_readonly;

-- App: read and write, never delete (tables and views).
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA product_change TO product_change_app;
-- bigserial columns: the app's INSERTs call nextval().
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA product_change TO product_change_app;
-- Readonly: read only.
GRANT SELECT ON ALL TABLES IN SCHEMA product_change TO product_change_readonly;

-- Objects the admin adds later get the same grants.
ALTER DEFAULT PRIVILEGES FOR ROLE product_change_admin IN SCHEMA product_change
    GRANT SELECT, INSERT, UPDATE ON TABLES TO product_change_app;
ALTER DEFAULT PRIVILEGES FOR ROLE product_change_admin IN SCHEMA product_change
    GRANT USAGE, SELECT ON SEQUENCES TO product_change_app;
ALTER DEFAULT PRIVILEGES FOR ROLE product_change_admin IN SCHEMA product_change
    GRANT SELECT ON TABLES TO product_change_readonly;

-- The views are for reading. ALL TABLES above includes them, and v_circuit_breaker_status
-- is a simple view, so INSERT and UPDATE through it would work.
REVOKE INSERT, UPDATE ON product_change.v_product_change_summary FROM product_change_app;
REVOKE INSERT, UPDATE ON product_change.v_kos_integration_summary FROM product_change_app;
REVOKE INSERT, UPDATE ON product_change.v_circuit_breaker_status FROM product_change_app;

-- Functions: PUBLIC may execute any new function; nobody but the admin needs these.
-- cleanup_old_logs() deletes: it is the admin's (scheduled) job, not the app's. A trigger
-- function needs no EXECUTE privilege to fire.
REVOKE ALL ON FUNCTION product_change.cleanup_old_logs() FROM PUBLIC;
REVOKE ALL ON FUNCTION product_change.update_updated_at_column() FROM PUBLIC;

RESET ROLE;
