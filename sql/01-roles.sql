-- Accounts of plan 9.2 and who may connect (schema-spec "Accounts and privileges").
-- Run by the schema-init Job as the bootstrap superuser, in one transaction with the other
-- files, with the passwords passed as psql variables from the Secret:
--   psql -v ON_ERROR_STOP=1 --single-transaction \
--        -v admin_password=... -v app_password=... -v readonly_password=... -f 01-roles.sql ...
-- No password is written here. Every statement converges, so the file can run any number
-- of times.

-- Keep the passwords below out of the server log, whatever the logging settings.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = panic;

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['product_change_admin', 'product_change_app', 'product_change_readonly']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I', r);
        END IF;
    END LOOP;
END
$$;

-- Attributes are stated in full on every run, so a hand-made change is undone.
ALTER ROLE product_change_admin WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'admin_password';
ALTER ROLE product_change_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'app_password';
ALTER ROLE product_change_readonly WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'readonly_password';

RESET log_statement;
RESET log_min_duration_statement;
RESET log_min_error_statement;

-- Nobody but the three accounts (and superusers) may connect or create anything.
-- DBNAME is psql's variable for the database it is connected to (PGDATABASE).
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT, TEMPORARY, CREATE ON DATABASE :"DBNAME" TO product_change_admin;
GRANT CONNECT ON DATABASE :"DBNAME" TO product_change_app, product_change_readonly;
-- PostgreSQL 14 lets every role create objects in schema public.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

-- The metrics sidecar (postgres_exporter) connects as the read-only account; pg_monitor
-- lets it read pg_stat_activity and the statistics views of all sessions, and nothing more.
GRANT pg_monitor TO product_change_readonly;

ALTER ROLE product_change_admin IN DATABASE :"DBNAME" SET search_path = product_change;
ALTER ROLE product_change_app IN DATABASE :"DBNAME" SET search_path = product_change;
ALTER ROLE product_change_readonly IN DATABASE :"DBNAME" SET search_path = product_change;
