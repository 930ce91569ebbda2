use super::*;
use pushmail_proto::session::v1::Notification;

/// The outbox generation the helpers open in.
const GEN: u64 = 77;
/// Another one: the outbox as recreated after a loss.
const NEW: u64 = 4_242;

fn hello(m: &mut Machine, generation: u64, last_ack: u64) -> Vec<Action> {
    m.on_frame(
        Instant::now(),
        Ok(ClientFrame::Hello {
            last_ack,
            generation,
            hb: 60,
            net: "46000-lte".into(),
        }),
    )
}

fn read(generation: u64, from: u64, resync: bool, seqs: &[u64]) -> Replay {
    Replay {
        generation,
        from,
        notifications: seqs
            .iter()
            .map(|&sequence| Notification {
                sequence,
                account_id: "a".into(),
                ..Default::default()
            })
            .collect(),
        resync,
    }
}

/// Open in `GEN` at sequence 5, nothing to replay.
fn open(now: Instant, proposed: u32) -> Machine {
    let mut m = Machine::new(Arc::new(Rules::default()), now);
    let actions = m.on_frame(
        now,
        Ok(ClientFrame::Hello {
            last_ack: 5,
            generation: GEN,
            hb: proposed,
            net: "46000-lte".into(),
        }),
    );
    let cursor = Cursor {
        generation: GEN,
        seq: 5,
    };
    assert!(
        matches!(&actions[0], Action::Opened { cursor: c, .. } if *c == cursor),
        "{actions:?}"
    );
    assert!(m.on_replay(read(GEN, 5, false, &[]), 0).is_empty());
    m
}

fn n(seq: u64) -> WireNotification {
    WireNotification {
        seq,
        account: "a".into(),
        ..Default::default()
    }
}

fn ack(seq: u64, generation: u64) -> Result<ClientFrame, crate::protocol::FrameError> {
    Ok(ClientFrame::Ack { seq, generation })
}

/// The sequences of the notifications among `actions`.
fn sent(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(ServerFrame::N(n)) => Some(n.seq),
            _ => None,
        })
        .collect()
}

fn resync(generation: u64, from: u64) -> Action {
    Action::Send(ServerFrame::Resync { generation, from })
}

#[tokio::test(start_paused = true)]
async fn heartbeat_is_clamped_and_enforced_with_grace() {
    let start = Instant::now();
    assert_eq!(
        open(start, 5).heartbeat(),
        Duration::from_secs(60),
        "raised to the minimum"
    );
    assert_eq!(
        open(start, 99_999).heartbeat(),
        Duration::from_secs(3_540),
        "lowered to the maximum"
    );
    let mut m = open(start, 300);
    assert_eq!(m.heartbeat(), Duration::from_secs(300));

    tokio::time::advance(Duration::from_secs(320)).await;
    assert!(
        m.on_tick(Instant::now()).is_empty(),
        "late but within grace"
    );
    let actions = m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
    assert_eq!(actions[..2], [Action::Send(ServerFrame::Hb), Action::Renew]);
    assert_eq!(m.deadline(), Instant::now() + Duration::from_secs(330));

    tokio::time::advance(Duration::from_secs(329)).await;
    assert!(m.on_tick(Instant::now()).is_empty());
    tokio::time::advance(Duration::from_secs(1)).await;
    let actions = m.on_tick(Instant::now());
    assert_eq!(
        actions[0],
        Action::Missed {
            hb: Duration::from_secs(300)
        }
    );
    assert_eq!(
        actions.last(),
        Some(&Action::Close(ErrorCode::HeartbeatMissed))
    );
    assert_eq!(
        m.on_deliver(GEN, n(9)),
        Delivery::Refused,
        "closed sessions take no deliveries"
    );
}

#[tokio::test(start_paused = true)]
async fn hello_must_come_first_and_in_time() {
    let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
    assert_eq!(m.on_deliver(GEN, n(1)), Delivery::Refused);
    let actions = m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
    assert_eq!(
        actions.last(),
        Some(&Action::Close(ErrorCode::ExpectedHello))
    );

    let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        m.on_tick(Instant::now()).last(),
        Some(&Action::Close(ErrorCode::ExpectedHello))
    );

    let mut m = open(Instant::now(), 60);
    let again = hello(&mut m, 0, 0);
    assert_eq!(again.last(), Some(&Action::Close(ErrorCode::ExpectedHello)));
}

#[tokio::test(start_paused = true)]
async fn acks_are_cumulative_and_checked() {
    let mut m = open(Instant::now(), 60);
    let Delivery::Await(actions) = m.on_deliver(GEN, n(6)) else {
        panic!("6 is new")
    };
    assert_eq!(sent(&actions), [6]);
    assert!(matches!(m.on_deliver(0, n(7)), Delivery::Await(_)));
    let unknown = m.on_frame(Instant::now(), ack(8, 0));
    assert!(matches!(
        &unknown[0],
        Action::Send(ServerFrame::Error {
            code: ErrorCode::UnknownSequence,
            ..
        })
    ));
    assert!(m.is_open(), "an unknown ack is answered, not fatal");
    assert_eq!(
        m.on_frame(Instant::now(), ack(7, GEN)),
        [Action::Acked {
            generation: GEN,
            through: 7
        }]
    );
    assert!(
        m.on_frame(Instant::now(), ack(6, 0)).is_empty(),
        "old acks are harmless"
    );
    assert_eq!(
        m.on_deliver(GEN, n(4)),
        Delivery::Acked,
        "already held: not resent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cursor_the_outbox_did_not_keep_gets_a_resync_and_everything_held() {
    // The phone of the issue: its cursor is from an outbox that is gone.
    let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
    let opened = hello(&mut m, GEN, 1_000_000);
    let cursor = Cursor {
        generation: GEN,
        seq: 1_000_000,
    };
    assert!(matches!(&opened[0], Action::Opened { cursor: c, .. } if *c == cursor));
    let actions = m.on_replay(read(NEW, 0, true, &[1, 2]), 0);
    assert_eq!(actions[0], resync(NEW, 0), "{actions:?}");
    assert_eq!(sent(&actions), [1, 2]);
    assert_eq!(
        m.cursor(),
        Cursor {
            generation: NEW,
            seq: 0
        }
    );
    // The next mail is no longer below the old cursor: sent, and acked
    // only by the device.
    let Delivery::Await(actions) = m.on_deliver(NEW, n(3)) else {
        panic!("3 must be sent")
    };
    assert_eq!(sent(&actions), [3]);
    assert_eq!(
        m.on_frame(Instant::now(), ack(3, NEW)),
        [Action::Acked {
            generation: NEW,
            through: 3
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fresh_device_gets_the_welcome_generation_without_a_resync() {
    let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
    hello(&mut m, 0, 0);
    let actions = m.on_replay(read(GEN, 0, false, &[1]), 0);
    assert_eq!(sent(&actions), [1]);
    assert_eq!(actions.len(), 1, "no resync: {actions:?}");
    // And the outbox's own resync (the cap dropped some) keeps the cursor.
    let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
    hello(&mut m, GEN, 3);
    let actions = m.on_replay(read(GEN, 3, true, &[6]), 0);
    assert_eq!(actions[0], resync(GEN, 3));
    assert_eq!(sent(&actions), [6]);
}

#[tokio::test(start_paused = true)]
async fn a_new_generation_under_a_live_connection_resyncs_it() {
    let mut m = open(Instant::now(), 60);
    assert!(matches!(m.on_deliver(GEN, n(6)), Delivery::Await(_)));
    // The outbox was lost and recreated: its first mail comes as 1.
    let Delivery::Reread {
        cursor,
        notification,
    } = m.on_deliver(NEW, n(1))
    else {
        panic!("another generation is read first")
    };
    assert_eq!(
        cursor,
        Cursor {
            generation: GEN,
            seq: 5
        }
    );
    let actions = m.on_replay(read(NEW, 0, true, &[1]), NEW);
    assert_eq!(actions[..2], [Action::Abandon, resync(NEW, 0)]);
    assert_eq!(sent(&actions), [1]);
    // Offered again, it is this generation's now.
    assert!(matches!(
        m.on_deliver(NEW, *notification),
        Delivery::Await(_)
    ));
    // An ack the device sent before it read the resync trims nothing.
    assert!(m.on_frame(Instant::now(), ack(6, GEN)).is_empty());
    assert_eq!(
        m.on_frame(Instant::now(), ack(1, NEW)),
        [Action::Acked {
            generation: NEW,
            through: 1
        }]
    );
    // A straggler of the old generation is refused without another read.
    assert_eq!(m.on_deliver(GEN, n(7)), Delivery::Refused);
}

#[tokio::test(start_paused = true)]
async fn a_delivery_of_a_lost_generation_is_refused_after_one_read() {
    let mut m = open(Instant::now(), 60);
    let Delivery::Reread { notification, .. } = m.on_deliver(NEW, n(9)) else {
        panic!("read first")
    };
    assert!(
        m.on_replay(read(GEN, 5, false, &[6]), NEW).is_empty(),
        "the connection's generation is current: nothing changes"
    );
    assert_eq!(m.on_deliver(NEW, *notification), Delivery::Refused);
    assert_eq!(m.on_deliver(NEW, n(10)), Delivery::Refused, "no new read");
    assert!(matches!(m.on_deliver(GEN, n(6)), Delivery::Await(_)));
}

#[tokio::test(start_paused = true)]
async fn an_ack_of_a_sequence_never_sent_in_this_generation_trims_nothing() {
    let mut m = Machine::new(Arc::new(Rules::default()), Instant::now());
    hello(&mut m, GEN, 40);
    m.on_replay(read(NEW, 0, true, &[]), 0);
    // A device from before generations acks its old cursor: never sent here.
    let actions = m.on_frame(Instant::now(), ack(40, 0));
    assert!(
        matches!(
            &actions[..],
            [Action::Send(ServerFrame::Error {
                code: ErrorCode::UnknownSequence,
                ..
            })]
        ),
        "{actions:?}"
    );
    assert!(
        m.on_frame(Instant::now(), ack(40, GEN)).is_empty(),
        "naming the lost generation"
    );
    assert!(
        matches!(m.on_deliver(NEW, n(1)), Delivery::Await(_)),
        "1 is below the old cursor, and still not acked"
    );
}

#[tokio::test(start_paused = true)]
async fn floods_and_garbage_close_the_connection() {
    let mut m = open(Instant::now(), 60);
    for _ in 0..29 {
        assert!(
            m.on_frame(Instant::now(), Ok(ClientFrame::Hb))
                .iter()
                .all(|a| !matches!(a, Action::Close(_)))
        );
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    for _ in 0..30 {
        m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
    }
    assert!(m.is_open(), "the window moved on");
    assert_eq!(
        m.on_frame(Instant::now(), Ok(ClientFrame::Hb)).last(),
        Some(&Action::Close(ErrorCode::Flood))
    );

    let mut m = open(Instant::now(), 60);
    let bad = ClientFrame::parse("{nope");
    assert_eq!(
        m.on_frame(Instant::now(), bad).last(),
        Some(&Action::Close(ErrorCode::Malformed))
    );
}

#[tokio::test(start_paused = true)]
async fn pings_are_answered_and_count_toward_the_flood_limit() {
    let mut m = open(Instant::now(), 60);
    assert_eq!(
        m.on_control(Instant::now(), Some(b"?".to_vec())),
        [Action::Pong(b"?".to_vec())]
    );
    assert!(m.on_control(Instant::now(), None).is_empty(), "a pong");
    // hello, the ping and the pong were three of the window's 30.
    for _ in 0..27 {
        m.on_frame(Instant::now(), Ok(ClientFrame::Hb));
    }
    assert!(m.is_open());
    assert_eq!(
        m.on_control(Instant::now(), Some(Vec::new())).last(),
        Some(&Action::Close(ErrorCode::Flood)),
        "the 31st frame in the window, though a ping"
    );
    assert!(
        m.on_control(Instant::now(), Some(Vec::new())).is_empty(),
        "closed"
    );
}

#[tokio::test(start_paused = true)]
async fn acks_answering_a_burst_of_mail_are_no_flood() {
    let mut m = open(Instant::now(), 60);
    // The helper opens with last_ack 5.
    for seq in 6..=200 {
        assert!(matches!(m.on_deliver(GEN, n(seq)), Delivery::Await(_)));
        let actions = m.on_frame(Instant::now(), ack(seq, GEN));
        assert_eq!(
            actions,
            [Action::Acked {
                generation: GEN,
                through: seq
            }],
            "ack {seq}"
        );
    }
    // Repeated acks of what is already acked answer nothing: they count.
    for _ in 0..29 {
        m.on_frame(Instant::now(), ack(200, GEN));
    }
    assert_eq!(
        m.on_frame(Instant::now(), ack(200, GEN)).last(),
        Some(&Action::Close(ErrorCode::Flood))
    );
}

#[tokio::test(start_paused = true)]
async fn drain_and_take_over_say_why() {
    let mut m = open(Instant::now(), 60);
    let actions = m.on_drain(Duration::from_millis(1_500));
    assert_eq!(
        actions[0],
        Action::Send(ServerFrame::Reconnect {
            after_ms: 1_500,
            reason: "drain".into()
        })
    );
    assert!(m.on_drain(Duration::ZERO).is_empty(), "once");
    let mut m = open(Instant::now(), 60);
    assert_eq!(
        m.on_taken_over().last(),
        Some(&Action::Close(ErrorCode::TakenOver))
    );
}

#[tokio::test(start_paused = true)]
async fn a_backlog_past_one_read_is_sent_in_parts_each_once() {
    // The hello's read was cut at the limit: 6..=7 of a longer backlog.
    let mut m = open(Instant::now(), 60);
    let first = m.on_more(read(GEN, 5, false, &[6, 7]));
    assert_eq!(sent(&first), [6, 7]);
    assert_eq!(m.highest_sent(), 7);
    // Acked, the next read overlaps what was sent (a live delivery of 8
    // came in meanwhile): only what is new goes out.
    let Delivery::Await(live) = m.on_deliver(GEN, n(8)) else {
        panic!("8 must be sent")
    };
    assert_eq!(sent(&live), [8]);
    let next = m.on_more(read(GEN, 7, false, &[8, 9, 10]));
    assert_eq!(sent(&next), [9, 10]);
    // A part of a recreated outbox is a resync and its replay.
    let switched = m.on_more(read(NEW, 0, true, &[1]));
    assert_eq!(switched[1], resync(NEW, 0), "{switched:?}");
    assert_eq!(sent(&switched), [1]);
}
