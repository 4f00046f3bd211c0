-- The application's login for docker-compose (the `db-roles` service runs this as the owner
-- before every `migrate`; idempotent): APP_DATABASE_USER, a member of the NOLOGIN group
-- `wallet_app` that migration 0010 grants the application's privileges to, with password
-- APP_DATABASE_PASSWORD. Same as devstack/roles.py for `make run` and the tests.
\set ON_ERROR_STOP on
\getenv app_user APP_DATABASE_USER
\getenv app_password APP_DATABASE_PASSWORD

SELECT 'CREATE ROLE wallet_app NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet_app') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
ALTER ROLE :"app_user" LOGIN PASSWORD :'app_password';
GRANT wallet_app TO :"app_user";
