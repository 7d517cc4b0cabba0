//! Kontor's black-box suite: one test binary that starts the real `kontor` server and
//! talks to it over HTTP (and SMTP) as a user would.

mod back_office_webhooks;
mod blobs;
mod browser;
mod cli;
mod customer_threading;
mod deploy_guide;
mod disk_full;
mod dovecot;
mod durability;
mod imap_door;
mod inbound;
mod inbound_fixtures;
mod inbound_robustness;
mod invalid_input;
mod jobs;
mod lmtp;
mod mail_round_trip;
mod ops;
mod outbound;
mod parties;
mod portal;
mod portal_browser;
mod portal_signing;
mod records;
mod search;
mod smtp_client;
mod smtp_sink;
mod support;
mod tickets;
mod tls;
mod tools;
mod webhook;
