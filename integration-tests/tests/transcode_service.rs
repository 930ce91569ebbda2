//! The transcode service over gRPC, on a real blob store: messages with
//! attachments made by independent tools, converted for device profiles,
//! streamed in chunks; requests for other accounts' mail, bad tokens and
//! unconvertible parts answered with clear statuses.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::path::Path;

use futures::StreamExt as _;
use image::GenericImageView as _;
use pushmail_common::blob::{BlobStore as _, LocalBlobStore, owner};
use pushmail_integration_tests::authed;
use pushmail_integration_tests::documents::{self, Attached};
use pushmail_integration_tests::edge;

/// The gateway's credential: the one caller transcode accepts.
fn gateway() -> String {
    pushmail_integration_tests::credential(pushmail_common::service_identity::Service::Gateway)
}
use pushmail_proto::transcode::v1 as pb;
use pushmail_proto::transcode::v1::transcode_chunk::Item;
use pushmail_proto::transcode::v1::transcode_service_client::TranscodeServiceClient;
use tonic::Code;
use tonic::transport::Channel;

const TENANT: &str = "0193a1b2-0000-7000-8000-000000000001";
const ACCOUNT: &str = "0193a1b2-0000-7000-8000-0000000000a1";

struct Fixture {
    client: TranscodeServiceClient<Channel>,
    blob: String,
    photo: Vec<u8>,
    big: Vec<u8>,
    _dir: tempfile::TempDir,
    _node: edge::Node<pushmail_transcode::Error>,
}

/// A message with every kind of attachment, stored and granted to ACCOUNT.
/// Sections: 1 the body (1.1 text, 1.2 HTML), 2 photo, 3 PDF, 4 PowerPoint,
/// 5 unlabelled GBK text, 6 inline logo, 7 zip, 8 corrupt PDF, 9 a large binary.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let photo = documents::imagemagick(
        &files,
        &["-size", "1600x1200", "gradient:red-blue"],
        "photo.jpg",
    );
    let logo = documents::imagemagick(&files, &["-size", "64x64", "xc:green"], "logo.png");
    let pdf = documents::pdf(&files);
    let pptx = documents::pptx(&files);
    let gbk = encoding_gbk("季度报告：收入增长百分之十二。请审阅附件。");
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let html = r#"<p>Hello <b>team</b><script>alert(1)</script></p><img src="cid:logo@x"><img src="https://tracker.example/p.gif">"#;
    let raw = documents::multipart(
        "Q3 report",
        html,
        &[
            Attached {
                content_type: "image/jpeg",
                file_name: "photo.jpg",
                bytes: &photo,
                content_id: None,
            },
            Attached {
                content_type: "application/pdf",
                file_name: "report.pdf",
                bytes: &pdf,
                content_id: None,
            },
            Attached {
                content_type: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                file_name: "roadmap.pptx",
                bytes: &pptx,
                content_id: None,
            },
            Attached {
                content_type: "text/plain",
                file_name: "notes.txt",
                bytes: &gbk,
                content_id: None,
            },
            Attached {
                content_type: "image/png",
                file_name: "logo.png",
                bytes: &logo,
                content_id: Some("logo@x"),
            },
            Attached {
                content_type: "application/zip",
                file_name: "archive.zip",
                bytes: b"PK\x03\x04junk",
                content_id: None,
            },
            Attached {
                content_type: "application/pdf",
                file_name: "broken.pdf",
                bytes: b"%PDF-1.7\n garbage",
                content_id: None,
            },
            Attached {
                content_type: "application/octet-stream",
                file_name: "data.bin",
                bytes: &big,
                content_id: None,
            },
        ],
    );
    let blobs = dir.path().join("blobs");
    let store = LocalBlobStore::new(&blobs);
    let blob = store.put(&raw).await.unwrap();
    store.grant(&owner(TENANT, ACCOUNT), &blob).await.unwrap();
    let node = edge::transcode(edge::transcode_config(&blobs))
        .await
        .unwrap();
    let client = connect(node.addr).await;
    Fixture {
        client,
        blob: blob.as_str().to_owned(),
        photo,
        big,
        _dir: dir,
        _node: node,
    }
}

fn encoding_gbk(text: &str) -> Vec<u8> {
    let out = std::process::Command::new("iconv")
        .args(["-f", "UTF-8", "-t", "GBK"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("iconv");
    assert!(out.status.success());
    out.stdout
}

async fn connect(addr: std::net::SocketAddr) -> TranscodeServiceClient<Channel> {
    for _ in 0..100 {
        if let Ok(client) = TranscodeServiceClient::connect(format!("http://{addr}")).await {
            return client;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("transcode did not start");
}

impl Fixture {
    fn request(&self, part: &str) -> pb::TranscodeRequest {
        pb::TranscodeRequest {
            tenant_id: TENANT.to_owned(),
            account_id: ACCOUNT.to_owned(),
            blob_ref: self.blob.clone(),
            part_id: part.to_owned(),
            ..Default::default()
        }
    }

    async fn transcode(
        &self,
        request: pb::TranscodeRequest,
    ) -> Result<(pb::TranscodeHeader, Vec<u8>, usize), tonic::Status> {
        let stream = self
            .client
            .clone()
            .transcode(authed(&gateway(), request))
            .await?;
        collect(stream.into_inner()).await
    }

    async fn fetch(
        &self,
        part: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(pb::TranscodeHeader, Vec<u8>, usize), tonic::Status> {
        let request = pb::FetchPartRequest {
            tenant_id: TENANT.to_owned(),
            account_id: ACCOUNT.to_owned(),
            blob_ref: self.blob.clone(),
            part_id: part.to_owned(),
            offset,
            limit,
        };
        let stream = self
            .client
            .clone()
            .fetch_part(authed(&gateway(), request))
            .await?;
        collect(stream.into_inner()).await
    }
}

/// The header, the data, and how many data chunks carried it.
async fn collect(
    mut stream: tonic::Streaming<pb::TranscodeChunk>,
) -> Result<(pb::TranscodeHeader, Vec<u8>, usize), tonic::Status> {
    let mut header = None;
    let mut data = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        match chunk?.item {
            Some(Item::Header(h)) => {
                assert!(header.is_none() && data.is_empty(), "one header, first");
                header = Some(h);
            }
            Some(Item::Data(bytes)) => {
                chunks += 1;
                data.extend_from_slice(&bytes);
            }
            None => panic!("an empty chunk"),
        }
    }
    let header = header.expect("a header");
    Ok((header, data, chunks))
}

fn named(request: pb::TranscodeRequest, profile: &str) -> pb::TranscodeRequest {
    pb::TranscodeRequest {
        profile_name: profile.to_owned(),
        ..request
    }
}

#[tokio::test]
async fn the_message_is_described_with_its_parts() {
    let f = fixture().await;
    let description = f
        .client
        .clone()
        .describe_message(authed(
            &gateway(),
            pb::DescribeMessageRequest {
                tenant_id: TENANT.to_owned(),
                account_id: ACCOUNT.to_owned(),
                blob_ref: f.blob.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(description.subject, "Q3 report");
    assert_eq!(description.from.unwrap().name, "Boss");
    assert!(description.has_html_body);
    let parts: Vec<(&str, &str)> = description
        .attachments
        .iter()
        .map(|a| (a.part_id.as_str(), a.file_name.as_str()))
        .collect();
    assert!(parts.contains(&("2", "photo.jpg")), "{parts:?}");
    assert!(parts.contains(&("3", "report.pdf")), "{parts:?}");
    assert!(parts.contains(&("4", "roadmap.pptx")), "{parts:?}");
    assert!(parts.contains(&("9", "data.bin")), "{parts:?}");
}

#[tokio::test]
async fn bodies_are_sanitised_html_or_text_by_profile() {
    let f = fixture().await;
    let (head, html, _) = f
        .transcode(named(f.request("body"), "smartphone"))
        .await
        .unwrap();
    let html = String::from_utf8(html).unwrap();
    assert_eq!(head.content_type, "text/html; charset=utf-8");
    assert!(html.contains("Hello <b>team</b>"), "{html}");
    assert!(
        !html.contains("script") && !html.contains("alert"),
        "{html}"
    );
    assert!(
        !html.contains("tracker.example"),
        "remote images are dropped: {html}"
    );
    assert!(
        html.contains(r#"src="attachments/6/preview""#),
        "inline image resolved: {html}"
    );

    let (head, text, _) = f
        .transcode(named(f.request("body"), "feature-phone"))
        .await
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    assert_eq!(head.content_type, "text/plain; charset=utf-8");
    assert!(
        text.contains("See the HTML version."),
        "the plain alternative: {text}"
    );

    // An explicit profile that allows remote images keeps them.
    let mut request = f.request("body");
    request.profile = Some(pb::DeviceProfile {
        screen_width: 480,
        accepts: vec!["text/html".into()],
        max_bytes: 100_000,
        allow_remote_images: true,
    });
    let (_, html, _) = f.transcode(request).await.unwrap();
    assert!(String::from_utf8(html).unwrap().contains("tracker.example"));
}

#[tokio::test]
async fn attachments_convert_for_the_profile() {
    let f = fixture().await;
    // Photo: 1600 px → the feature phone's 240, within its 30 KiB.
    let (head, jpeg, _) = f
        .transcode(named(f.request("2"), "feature-phone"))
        .await
        .unwrap();
    assert_eq!(head.content_type, "image/jpeg");
    assert_eq!(head.total_bytes, jpeg.len() as u64);
    assert!(jpeg.len() <= 30 * 1024);
    let image = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(image.dimensions(), (240, 180));
    assert_ne!(jpeg, f.photo);

    // PDF: every page's text, one page's text, a page image.
    let (head, html, _) = f
        .transcode(named(f.request("3"), "smartphone"))
        .await
        .unwrap();
    let html = String::from_utf8(html).unwrap();
    assert_eq!(head.page_count, 2);
    assert!(
        html.contains("Quarterly report") && html.contains("outlook for next year"),
        "{html}"
    );
    let mut page_two = named(f.request("3"), "smartphone");
    page_two.page = 2;
    let (_, html, _) = f.transcode(page_two).await.unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("outlook") && !html.contains("Quarterly"),
        "{html}"
    );
    let mut image_one = named(f.request("3"), "smartphone");
    image_one.rendition = pb::Rendition::Image.into();
    image_one.page = 1;
    let (head, jpeg, _) = f.transcode(image_one).await.unwrap();
    assert_eq!(head.content_type, "image/jpeg");
    assert_eq!(image::load_from_memory(&jpeg).unwrap().width(), 720);

    // PowerPoint, and GBK text without a charset label.
    let (_, html, _) = f
        .transcode(named(f.request("4"), "smartphone"))
        .await
        .unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("Roadmap 2027") && html.contains("季度目标"),
        "{html}"
    );
    let (head, text, _) = f
        .transcode(named(f.request("5"), "feature-phone"))
        .await
        .unwrap();
    assert_eq!(head.content_type, "text/plain; charset=utf-8");
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "季度报告：收入增长百分之十二。请审阅附件。"
    );
    assert_eq!(head.file_name, "notes.txt");
}

#[tokio::test]
async fn the_same_request_is_the_same_etag_and_ranges_stream_slices() {
    let f = fixture().await;
    let a = f
        .transcode(named(f.request("2"), "smartphone"))
        .await
        .unwrap();
    let b = f
        .transcode(named(f.request("2"), "smartphone"))
        .await
        .unwrap();
    assert_eq!(a.0.etag, b.0.etag);
    assert_eq!(a.1, b.1);
    let other = f.transcode(named(f.request("2"), "tablet")).await.unwrap();
    assert_ne!(a.0.etag, other.0.etag);

    // The original, in 64 KiB chunks, and a slice of it.
    let (head, whole, chunks) = f.fetch("9", 0, 0).await.unwrap();
    assert_eq!(whole, f.big);
    assert_eq!(head.total_bytes, 300_000);
    assert_eq!(head.content_type, "application/octet-stream");
    assert_eq!(chunks, 5);
    let (head, slice, _) = f.fetch("9", 100_000, 70_000).await.unwrap();
    assert_eq!(head.total_bytes, 300_000, "the header gives the whole size");
    assert_eq!(slice, f.big[100_000..170_000]);
    let (_, tail, _) = f.fetch("9", 299_990, 0).await.unwrap();
    assert_eq!(tail, f.big[299_990..]);
    let (_, none, _) = f.fetch("9", 400_000, 0).await.unwrap();
    assert!(none.is_empty());
    let mut ranged = named(f.request("2"), "smartphone");
    ranged.offset = 10;
    ranged.limit = 20;
    let (_, slice, _) = f.transcode(ranged).await.unwrap();
    assert_eq!(slice, a.1[10..30]);
}

#[tokio::test]
async fn refusals_say_why() {
    let f = fixture().await;
    let code = |r: Result<(pb::TranscodeHeader, Vec<u8>, usize), tonic::Status>| {
        let status = r.unwrap_err();
        (status.code(), status.message().to_owned())
    };

    let (c, m) = code(f.transcode(f.request("7")).await);
    assert_eq!(
        (c, m.as_str()),
        (Code::FailedPrecondition, "no converter for application/zip")
    );
    let (c, m) = code(f.transcode(f.request("8")).await);
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    assert!(m.contains("PDF"), "{m}");
    let (c, _) = code(f.transcode(f.request("42")).await);
    assert_eq!(c, Code::NotFound);
    let (c, m) = code(f.transcode(f.request("1")).await);
    assert_eq!(c, Code::FailedPrecondition, "a container: {m}");
    let mut page = named(f.request("3"), "smartphone");
    page.rendition = pb::Rendition::Image.into();
    page.page = 9;
    assert_eq!(code(f.transcode(page).await).0, Code::NotFound);
    // The feature phone shows no PowerPoint HTML, but text: still a preview.
    assert!(
        f.transcode(named(f.request("4"), "feature-phone"))
            .await
            .is_ok()
    );
    let only_png = pb::TranscodeRequest {
        profile: Some(pb::DeviceProfile {
            screen_width: 320,
            accepts: vec!["text/html".into()],
            max_bytes: 100_000,
            allow_remote_images: false,
        }),
        ..f.request("2")
    };
    let (c, m) = code(f.transcode(only_png).await);
    assert_eq!(c, Code::FailedPrecondition);
    assert!(m.contains("accepts none of"), "{m}");

    let (c, m) = code(f.transcode(named(f.request("2"), "watch")).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(
        m.contains("feature-phone"),
        "lists the configured ones: {m}"
    );
    let bad_profile = pb::TranscodeRequest {
        profile: Some(pb::DeviceProfile {
            screen_width: 5,
            ..Default::default()
        }),
        ..f.request("2")
    };
    assert_eq!(
        code(f.transcode(bad_profile).await).0,
        Code::InvalidArgument
    );

    // Another account (even of the same tenant) cannot read it; nor can a
    // made-up reference or a caller without the internal token.
    let other = pb::TranscodeRequest {
        account_id: "0193a1b2-0000-7000-8000-0000000000a2".to_owned(),
        ..f.request("2")
    };
    assert_eq!(code(f.transcode(other).await).0, Code::NotFound);
    let other_tenant = pb::TranscodeRequest {
        tenant_id: "0193a1b2-0000-7000-8000-000000000002".to_owned(),
        ..f.request("2")
    };
    assert_eq!(code(f.transcode(other_tenant).await).0, Code::NotFound);
    let made_up = pb::TranscodeRequest {
        blob_ref: format!("sha256:{}", "ab".repeat(32)),
        ..f.request("2")
    };
    assert_eq!(code(f.transcode(made_up).await).0, Code::NotFound);
    let malformed = pb::TranscodeRequest {
        blob_ref: "../../etc/passwd".to_owned(),
        ..f.request("2")
    };
    assert_eq!(code(f.transcode(malformed).await).0, Code::InvalidArgument);
    let unauthenticated = f
        .client
        .clone()
        .transcode(f.request("2"))
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    let wrong = f
        .client
        .clone()
        .transcode(authed("not-the-token", f.request("2")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_slow_job_is_cut_off_and_its_slot_freed() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let store = LocalBlobStore::new(&blobs);
    // A big photo: long enough to convert that a 1 ms budget is exceeded.
    let photo = documents::imagemagick(dir.path(), &["-size", "3000x3000", "plasma:"], "big.jpg");
    let raw = documents::multipart(
        "big",
        "<p>x</p>",
        &[Attached {
            content_type: "image/jpeg",
            file_name: "big.jpg",
            bytes: &photo,
            content_id: None,
        }],
    );
    let blob = store.put(&raw).await.unwrap();
    store.grant(&owner(TENANT, ACCOUNT), &blob).await.unwrap();
    let mut config = edge::transcode_config(Path::new(&blobs));
    config.limits.job_timeout_ms = 1;
    config.workers.count = 1;
    let node = edge::transcode(config).await.unwrap();
    let client = connect(node.addr).await;
    let request = pb::TranscodeRequest {
        tenant_id: TENANT.to_owned(),
        account_id: ACCOUNT.to_owned(),
        blob_ref: blob.as_str().to_owned(),
        part_id: "2".to_owned(),
        profile_name: "smartphone".to_owned(),
        ..Default::default()
    };
    let first = client
        .clone()
        .transcode(authed(&gateway(), request.clone()))
        .await;
    // Past its deadline the worker is killed: the file cannot be
    // converted (the gateway's 422), not a transient 504.
    let first = first.unwrap_err();
    assert_eq!(first.code(), Code::FailedPrecondition, "{first:?}");
    assert!(first.message().contains("did not finish"), "{first:?}");
    // Its only slot is free at once: the next request gets a worker (and
    // the same answer), not RESOURCE_EXHAUSTED.
    let second = client.clone().transcode(authed(&gateway(), request)).await;
    let code = second.err().map(|s| s.code());
    assert_eq!(code, Some(Code::FailedPrecondition));
    node.stop().await.unwrap();
}
