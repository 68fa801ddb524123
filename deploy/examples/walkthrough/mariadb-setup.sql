-- deploy/README.md, step 1: the roles the walkthrough's policy names, and meshgate's admin
-- account. Run as a MariaDB administrator (10.6 or later), e.g.
--   mariadb -h mariadb.db.svc.cluster.local -u root -p < deploy/examples/walkthrough/mariadb-setup.sql
-- Replace CHANGE-ME first: it is the admin password you also put in the meshgate-mariadb-admin
-- Secret; meshgate can rotate it later (meshgate creds rotate-root).

CREATE DATABASE IF NOT EXISTS shop;

-- The roles hold the grants; meshgate only picks one per identity (policy) and creates a
-- short-lived account per identity holding it.
CREATE ROLE IF NOT EXISTS shop_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.* TO shop_writer;
CREATE ROLE IF NOT EXISTS shop_reader;
GRANT SELECT ON shop.* TO shop_reader;
-- CI migrations (direct credentials): schema changes, no account management.
CREATE ROLE IF NOT EXISTS shop_migrator;
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES,
      CREATE VIEW, SHOW VIEW, TRIGGER ON shop.* TO shop_migrator;

-- meshgate's admin account: it may create accounts, hand out exactly these roles, read
-- mysql.user (to recognise a lease taken over) and kill its leases' connections. With
-- upstream TLS (the walkthrough's values) it logs in only with meshgate's client certificate:
-- subject and issuer as `openssl x509 -in tls/upstream.crt -noout -subject -issuer -nameopt compat` prints them.
CREATE USER IF NOT EXISTS meshgate_admin@'%' IDENTIFIED BY 'CHANGE-ME'
  REQUIRE SUBJECT '/O=meshgate/CN=meshgate-upstream' AND ISSUER '/O=meshgate/CN=meshgate CA cluster.local';
GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO meshgate_admin@'%';
GRANT SELECT ON mysql.user TO meshgate_admin@'%';
-- One GRANT per role: MariaDB grants a single role per statement.
GRANT shop_writer TO meshgate_admin@'%' WITH ADMIN OPTION;
GRANT shop_reader TO meshgate_admin@'%' WITH ADMIN OPTION;
GRANT shop_migrator TO meshgate_admin@'%' WITH ADMIN OPTION;
