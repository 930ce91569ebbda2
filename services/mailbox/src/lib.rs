//! The mailbox service: the account's mailbox as the phone sees it.
//! `domain` holds what it reasons about; `backend` is the one trait every
//! place mail lives implements (`imap`: the provider's server, upstream);
//! `sync` turns "what the phone holds" and "what the server has" into
//! resumable pages behind tokens.

pub mod backend;
pub mod domain;
pub mod imap;
pub mod sync;
