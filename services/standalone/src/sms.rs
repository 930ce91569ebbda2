//! Standalone has no SMS centre: every SMS the platform sends (codes,
//! wake-ups, notices) is printed in the terminal as the demo device prints
//! pushes, read from the in-process SMS topic with a group of its own.
//! Binding's SMS outbox keeps the same SMS for the portal.

use std::sync::Arc;

use pushmail_common::bus::{self, EventBus, SubscribeOptions};
use pushmail_proto::events::v1::SmsOutbound;
use pushmail_proto::topics::SMS_OUTBOUND;
use pushmail_sms_encoding::shown::{ShownKind, show};
use tokio_util::sync::CancellationToken;

/// One SMS as a terminal line.
pub(crate) fn line(sms: &SmsOutbound) -> String {
    let shown = show(sms);
    let purpose = match shown.purpose {
        "otp" => "verification code",
        "wake_up" => "wake-up",
        other => other,
    };
    match shown.kind {
        ShownKind::Text => format!("sms → {} [{purpose}] {}", sms.msisdn, shown.text),
        ShownKind::WapPush => format!(
            "sms → {} [{purpose}, WAP Push] {} → {}",
            sms.msisdn, shown.text, shown.url
        ),
    }
}

/// Prints every SMS until `shutdown`.
pub(crate) async fn print(
    bus: Arc<dyn EventBus>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut sms = bus
        .subscribe(SubscribeOptions {
            group: format!("standalone-terminal-{}", pushmail_common::clock::now_ms()),
            topics: vec![SMS_OUTBOUND.name().to_owned()],
        })
        .await?;
    loop {
        let record = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            record = sms.next() => record?,
        };
        sms.commit(&record).await?;
        match bus::decode(SMS_OUTBOUND, &record) {
            Ok(message) => println!("{}", line(&message)),
            Err(e) => {
                tracing::warn!(error = %pushmail_common::report::Report(&e), "an SMS that does not decode was not printed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushmail_proto::events::v1::{SmsPurpose, sms_outbound};

    #[test]
    fn a_code_prints_with_its_number_and_purpose() {
        let sms = SmsOutbound {
            msisdn: "+8613800138000".into(),
            purpose: SmsPurpose::Otp.into(),
            body: Some(sms_outbound::Body::Text("code 123456".into())),
            ..Default::default()
        };
        assert_eq!(
            line(&sms),
            "sms → +8613800138000 [verification code] code 123456"
        );
    }
}
