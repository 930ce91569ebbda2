//! The SMTP/LMTP command line reader on arbitrary client bytes, the way a
//! connection reads them: bounded command lines, each parsed, and after a
//! `DATA` a message body up to its limit. It must never panic, hang, or
//! keep more than a line's or a message's limit, and an endless line must
//! be given up on.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The reader and parser modules themselves (ingest's), compiled here
// without the rest of the service.
#[allow(dead_code, unreachable_pub)]
#[path = "../../src/smtp/command.rs"]
mod command;
#[allow(dead_code, unreachable_pub)]
#[path = "../../src/smtp/lines.rs"]
mod lines;

use command::Command;
use lines::{Body, Line};

/// The receiver's command line limit (`conn.rs`).
const MAX_COMMAND_LINE: usize = 2_048;
/// A small message limit, so that it is hit.
const MAX_MESSAGE: usize = 4_096;

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    // Buffer sizes down to one byte: lines split across reads everywhere.
    let capacity = usize::from(first % 32) + 1;
    let mut reader = tokio::io::BufReader::with_capacity(capacity, data);
    futures::executor::block_on(async {
        let mut line = Vec::new();
        for _ in 0..data.len() + 1 {
            line.clear();
            match lines::read_line(&mut reader, &mut line, MAX_COMMAND_LINE).await {
                Ok(Line::Complete) => assert!(line.len() <= MAX_COMMAND_LINE),
                Ok(Line::TooLong) => {
                    assert_eq!(line.len(), MAX_COMMAND_LINE);
                    continue;
                }
                Ok(Line::Overflow | Line::Closed) | Err(_) => return,
            }
            if let Ok(Command::Data) = command::parse(&line) {
                match lines::read_body(&mut reader, MAX_MESSAGE).await {
                    Ok(Body::Message(message)) => assert!(message.len() <= MAX_MESSAGE),
                    Ok(Body::TooLarge) => {}
                    Ok(Body::Closed | Body::Overflow) | Err(_) => return,
                }
            }
        }
        panic!("more lines than input bytes");
    });
});
