-- The users who may log in to SweFreq, kept on the web server as in the
-- original. The app logs in as its own system user (unix_socket).
CREATE DATABASE IF NOT EXISTS swefreq_users;
CREATE TABLE IF NOT EXISTS swefreq_users.users (
    username VARCHAR(64) PRIMARY KEY,
    salt     VARBINARY(16) NOT NULL,
    pw_hash  VARBINARY(32) NOT NULL,
    created  TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE USER IF NOT EXISTS 'swefreq'@'localhost' IDENTIFIED VIA unix_socket;
GRANT SELECT, INSERT, DELETE ON swefreq_users.users TO 'swefreq'@'localhost';
