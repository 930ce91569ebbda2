//! TLS on the device endpoints, and several processes on one port.

use std::sync::Arc;

use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::*;

#[tokio::test]
async fn devices_connect_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["push.example.net".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let redis = pushmail_integration_tests::redis_config();
    let mut settings = config(&redis);
    settings.devices.tls.enabled = true;
    settings.devices.tls.cert_path = dir.path().join("cert.pem");
    settings.devices.tls.key_path = dir.path().join("key.pem");
    let node = SessionNode::start(settings).await;

    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(node.devices).await.unwrap();
    let tls = TlsConnector::from(Arc::new(client))
        .connect("push.example.net".try_into().unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let device = Device::new();
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = "wss://push.example.net/v1/connect"
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", device.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("upgrade over TLS");
    ws.send(Message::Text(r#"{"t":"hello","hb":60}"#.into()))
        .await
        .unwrap();
    let welcome = loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(text) => break serde_json::from_str::<Value>(&text).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(welcome["t"], "welcome");

    // Plain TCP to a TLS port gets nowhere, and costs the node nothing.
    assert!(open(&node, &device.token).await.is_err());
    node.stop().await;
}

#[tokio::test]
async fn several_processes_share_the_device_port() {
    let redis = pushmail_integration_tests::redis_config();
    let port = pushmail_integration_tests::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let mut settings = config(&redis);
        settings.devices.reuse_port = true;
        let listeners = pushmail_session::Listeners {
            server: pushmail_common::host::GrpcListeners::ephemeral()
                .await
                .unwrap(),
            devices: pushmail_session::listener::bind(addr, true, 128)
                .expect("a second bind on the same port"),
        };
        nodes.push(SessionNode::start_on(settings, listeners).await);
    }
    let mut sockets = Vec::new();
    for _ in 0..24 {
        sockets.push(hello(&nodes[0], &Device::new(), 0, 60).await.0);
    }
    let mut counts = Vec::new();
    for node in &nodes {
        let body = pushmail_integration_tests::http_get(node.admin, "/v1/heartbeats")
            .await
            .unwrap()
            .1;
        let stats: Value = serde_json::from_str(&body).unwrap();
        counts.push(stats["connected"].as_u64().unwrap());
    }
    assert_eq!(counts.iter().sum::<u64>(), 24, "{counts:?}");
    assert!(
        counts.iter().all(|c| *c > 0),
        "the kernel spreads connections over both: {counts:?}"
    );
    drop(sockets);
    for node in nodes {
        node.stop().await;
    }
}
