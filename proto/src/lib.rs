//! pushmail's contracts: gRPC services and the protobuf payloads of every
//! Kafka topic. Services meet only through these types; each converts them
//! to its own domain types at its edge.

#![allow(
    unreachable_pub,
    clippy::doc_markdown,
    missing_docs,
    clippy::too_many_lines
)]

pub mod codec;
pub mod topics;

/// Types shared by every contract.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("pushmail.common.v1");
    }
}

/// Kafka topic payloads.
pub mod events {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("pushmail.events.v1");
    }
}

/// Binding service (internal and admin surfaces).
pub mod binding {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("pushmail.binding.v1");
    }
}

/// Session holder service.
pub mod session {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("pushmail.session.v1");
    }
}

/// Transcode service.
pub mod transcode {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("pushmail.transcode.v1");
    }
}

/// Mailbox service.
pub mod mailbox {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("pushmail.mailbox.v1");
    }
}

/// Encoded `FileDescriptorSet` of every pushmail proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pushmail_descriptor");
