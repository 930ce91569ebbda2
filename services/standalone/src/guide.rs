//! What a newcomer reads once `make run` is ready: where the portal is
//! and what to sign in with, how to add their own mailbox and number, and
//! where the SMS a real phone would get appear instead.

use crate::config::StandaloneConfig;

/// The first-run guide; `demo_key` is the demo tenant's API key, when the
/// demo runs.
pub(crate) fn print(config: &StandaloneConfig, demo_key: Option<&str>) {
    let portal = format!("http://{}/portal", config.gateway.server.http_addr);
    let data = config.data_dir.display();
    println!("First steps:");
    match demo_key {
        Some(key) => {
            println!("  1. Open the portal {portal}");
            println!("     and sign in with the demo tenant's key: {key}");
            println!("     (kept in {data}/demo.json)");
        }
        None => {
            println!(
                "  1. Make a tenant with the operator token ({data}/secrets/operator_token.hex):"
            );
            println!(
                "     curl -s -H \"Authorization: Bearer $(cat {data}/secrets/operator_token.hex)\" \
                 -H 'Content-Type: application/json' -d '{{\"name\":\"me\",\"max_accounts\":10,\"sms_per_day\":100}}' \
                 http://{}/api/v1/tenants",
                config.gateway.server.http_addr
            );
            println!("     then open the portal {portal} and sign in with its api_key");
        }
    }
    println!(
        "  2. Add your own mailbox: \"Add an account\", External IMAP, your server, user and password"
    );
    println!("     (a mail server on this machine is allowed here: 127.0.0.1)");
    if config.binding.sms_outbox.enabled {
        println!(
            "  3. Open it and \"Bind number\": there is no SMS centre here, so every SMS is printed"
        );
        println!(
            "     below (\"sms → …\") and listed on the portal's \"SMS outbox\" page: enter the code"
        );
    } else {
        println!("  3. Open it and \"Bind number\"; the code goes to your SMS centre");
    }
    println!("  4. \"Register phone\" on the verified number, then run the phone with its token:");
    println!(
        "     pushmail device --server ws://{} --token <token> --fetch",
        config.session.devices.addr
    );
    println!("  5. Read and answer your mail as the phone (the account id is on its portal page):");
    println!(
        "     pushmail device --gateway http://{} --token <token> ls --account <id>",
        config.gateway.server.http_addr
    );
}
