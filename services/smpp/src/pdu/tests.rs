//! The PDU adapter against smpp34: what it writes, reads and refuses.

use smpp34::{Tlv, TlvTag};

use super::*;

fn sample() -> Submit {
    Submit {
        source: Address {
            ton: 5,
            npi: 0,
            addr: "pushmail".into(),
        },
        destination: Address {
            ton: 1,
            npi: 1,
            addr: "8613800138000".into(),
        },
        esm_class: ESM_UDHI,
        validity_period: "261127093000000+".into(),
        registered_delivery: REGISTERED_DELIVERY_FINAL,
        data_coding: data_coding::UCS2,
        short_message: vec![5, 0, 3, 7, 2, 1, 0x4F, 0x60],
    }
}

fn receipt_pdu(sequence: u32) -> Vec<u8> {
    test_receipt(
        sequence,
        "id:1f stat:DELIVRD",
        vec![
            Tlv::from_c_string(TlvTag::ReceiptedMessageId, "1f"),
            Tlv::from_u8(TlvTag::MessageStateTlv, 2),
        ],
    )
    .encode()
}

#[test]
fn a_submit_is_written_as_the_specification_lays_it_out() {
    let pdu = sample().encode(7).unwrap();
    let mut stream = BytesMut::from(&pdu[..]);
    let frame = Frame::decode(&mut stream).unwrap().unwrap();
    assert_eq!((frame.command_id(), frame.sequence()), (0x0000_0004, 7));
    // §4.4.1 by hand: service_type, then the source and destination.
    let body = &pdu[HEADER_LEN..];
    assert_eq!(&body[..4], &[0, 5, 0, b'p']);
    let read = submit_sm::decode(frame.header.clone(), &frame.pdu).unwrap();
    assert_eq!(read.destination_addr, "8613800138000");
    assert_eq!((read.esm_class, read.data_coding), (ESM_UDHI, 8));
    assert_eq!(read.validity_period, "261127093000000+");
    assert_eq!(read.short_message, sample().short_message);
    assert_eq!(read.registered_delivery, REGISTERED_DELIVERY_FINAL);
}

#[test]
fn frames_are_cut_from_a_stream_whole() {
    let first = enquire_link(7);
    let second = receipt_pdu(8);
    let mut stream = BytesMut::new();
    stream.extend_from_slice(&first);
    stream.extend_from_slice(&second[..10]);
    let frame = Frame::decode(&mut stream).unwrap().unwrap();
    assert_eq!(
        (frame.command_id(), frame.sequence()),
        (command::ENQUIRE_LINK, 7)
    );
    assert_eq!(frame.enquire_link_resp(), {
        let mut resp = vec![0, 0, 0, 16, 0x80, 0, 0, 0x15, 0, 0, 0, 0];
        resp.extend_from_slice(&7u32.to_be_bytes());
        resp
    });
    assert!(Frame::decode(&mut stream).unwrap().is_none());
    stream.extend_from_slice(&second[10..]);
    let frame = Frame::decode(&mut stream).unwrap().unwrap();
    let message = frame.deliver_sm().unwrap();
    assert_eq!(message.tlvs.receipted_message_id().as_deref(), Some("1f"));
    assert_eq!(text_of(&message), b"id:1f stat:DELIVRD");
    assert!(stream.is_empty());
}

#[test]
fn bogus_lengths_and_bodies_are_errors_not_panics() {
    let mut stream = BytesMut::from(&[0, 0, 0, 3, 0, 0, 0, 0][..]);
    assert!(matches!(
        Frame::decode(&mut stream),
        Err(PduError::BadLength(3))
    ));
    let mut stream = BytesMut::from(&[0x7F, 0, 0, 0][..]);
    assert!(matches!(
        Frame::decode(&mut stream),
        Err(PduError::BadLength(_))
    ));
    // Every cut of a receipt, its length field made to match: an
    // error, whether smpp34 notices (a missing field) or not (a cut
    // optional parameter it would drop), unless it falls between
    // optional parameters (the receipt's two are 7 and 5 octets).
    let whole = receipt_pdu(9);
    let between = [whole.len() - 12, whole.len() - 5];
    for cut in HEADER_LEN..whole.len() {
        let mut pdu = whole[..cut].to_vec();
        pdu[..4].copy_from_slice(&u32::try_from(cut).unwrap().to_be_bytes());
        let frame = Frame::decode(&mut BytesMut::from(&pdu[..]))
            .unwrap()
            .unwrap();
        let read = frame.deliver_sm();
        if between.contains(&cut) {
            assert!(read.is_ok(), "cut at {cut}: {read:?}");
        } else {
            assert!(read.is_err(), "cut at {cut}");
        }
    }
    let mut trailing = whole.clone();
    trailing.extend_from_slice(&[0, 0x1E]);
    trailing[..4].copy_from_slice(&u32::try_from(whole.len() + 2).unwrap().to_be_bytes());
    let frame = Frame::decode(&mut BytesMut::from(&trailing[..]))
        .unwrap()
        .unwrap();
    assert_eq!(
        frame.deliver_sm().unwrap_err(),
        PduError::NotCanonical("deliver_sm")
    );
}

#[test]
fn responses_are_read_by_kind() {
    let read = |pdu: Vec<u8>| {
        Frame::decode(&mut BytesMut::from(&pdu[..]))
            .unwrap()
            .unwrap()
            .submit_resp()
    };
    let accepted = with_header(command::SUBMIT_SM_RESP, Status::OK, 3, b"1f\0");
    assert_eq!(read(accepted), Ok(Ok("1f".to_owned())));
    let throttled = with_header(command::SUBMIT_SM_RESP, Status(0x58), 3, &[]);
    assert_eq!(read(throttled), Ok(Err(Status(0x58))));
    let nack = with_header(command::GENERIC_NACK, Status(0x03), 3, &[]);
    assert_eq!(read(nack), Ok(Err(Status(0x03))));
    let unterminated = with_header(command::SUBMIT_SM_RESP, Status::OK, 3, b"1f");
    assert!(matches!(
        read(unterminated),
        Err(PduError::Malformed { .. })
    ));
    let wrong = with_header(command::UNBIND_RESP, Status::OK, 3, &[]);
    assert_eq!(read(wrong), Err(PduError::Unexpected(command::UNBIND_RESP)));
}

#[test]
fn a_deliver_sm_resp_counts_its_message_id() {
    for status in [SmppError::ESME_ROK, SmppError::ESME_RX_P_APPN] {
        let pdu = deliver_sm_resp(5, status);
        assert_eq!(pdu.len(), 17);
        assert_eq!(&pdu[..4], &17u32.to_be_bytes());
        assert_eq!(&pdu[8..12], &(status as u32).to_be_bytes());
    }
}

#[test]
fn fields_too_long_for_smpp_are_refused_when_sending() {
    let bind = Bind {
        system_id: "a-system-id-that-is-too-long".into(),
        password: "pw".into(),
        system_type: String::new(),
        addr_ton: 0,
        addr_npi: 0,
        address_range: String::new(),
    };
    assert_eq!(bind.encode(1), Err(PduError::TooLong("system_id", 15)));
    let secret = Bind {
        system_id: "pushmail".into(),
        password: "s3cret".into(),
        ..bind
    };
    assert!(
        !format!("{secret:?}").contains("s3cret"),
        "no password in logs"
    );
    let pdu = secret.encode(1).unwrap();
    assert_eq!(&pdu[HEADER_LEN..], b"pushmail\0s3cret\0\0\x34\0\0\0");
    let mut message = sample();
    message.short_message = vec![0; 255];
    assert_eq!(
        message.encode(1),
        Err(PduError::TooLong("short_message", 254))
    );
    message.short_message.clear();
    message.destination.addr = "1".repeat(21);
    assert_eq!(
        message.encode(1),
        Err(PduError::TooLong("destination_addr", 20))
    );
}

#[test]
fn absolute_times_are_utc_with_a_plus_sign() {
    let at: jiff::Timestamp = "2026-11-27T09:30:00Z".parse().unwrap();
    assert_eq!(absolute_time(at), "261127093000000+");
}

#[test]
fn statuses_are_named_and_classified() {
    assert_eq!(Status(0x58).to_string(), "ESME_RTHROTTLED (0x00000058)");
    assert_eq!(Status(0x0450).to_string(), "status 0x00000450");
    assert!(Status(0x14).is_busy() && Status(0x14).is_transient());
    assert!(Status(0x08).is_transient() && !Status(0x08).is_busy());
    assert!(!Status(0x0B).is_transient());
    // A vendor status whose low octet is a known one is not that one.
    assert!(!Status(0x0458).is_busy());
}
