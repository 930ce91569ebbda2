//! Audio and video files ffmpeg writes at test time: what they are, a
//! still of the video, and the files that must be refused.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::path::Path;
use std::process::Command;

use pushmail_transcode::convert::media::{Limits, MediaError, probe, still};

/// `ffmpeg -f lavfi -i <source> <args> <out>`, the file's bytes.
fn make(dir: &Path, source: &str, args: &[&str], out: &str) -> Vec<u8> {
    let path = dir.join(out);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", source])
        .args(args)
        .arg(&path)
        .status()
        .expect("ffmpeg (installed by make test)");
    assert!(status.success(), "ffmpeg {source} {args:?} {out}");
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn audio_and_video_are_described_and_video_gets_a_still() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tone = "sine=frequency=440:duration=2";
    let picture = "testsrc=duration=2:size=640x360:rate=25";
    for (bytes, name, kind, codec) in [
        (
            make(d, tone, &["-ar", "44100", "-c:a", "libmp3lame"], "a.mp3"),
            "mp3",
            "audio",
            "mp3",
        ),
        (
            make(d, tone, &["-ar", "8000", "-ac", "1"], "a.wav"),
            "wav",
            "audio",
            "pcm_s16le",
        ),
        (
            make(
                d,
                picture,
                &["-c:v", "libx264", "-pix_fmt", "yuv420p"],
                "v.mp4",
            ),
            "mp4",
            "video",
            "h264",
        ),
        (
            make(d, picture, &["-c:v", "mpeg4"], "v.avi"),
            "avi",
            "video",
            "mpeg4",
        ),
    ] {
        let info = probe(&bytes, &Limits::default()).await.unwrap();
        let duration = info.duration_ms.unwrap();
        assert!((1_900..=2_150).contains(&duration), "{name}: {duration} ms");
        let stream = info.streams.iter().find(|s| s.kind == kind).unwrap();
        assert_eq!(stream.codec, codec, "{name}");
        assert!(info.container.contains(name), "{name}: {}", info.container);
        assert_eq!(info.size, bytes.len() as u64);
        if kind == "video" {
            assert_eq!(
                (stream.width, stream.height),
                (Some(640), Some(360)),
                "{name}"
            );
            let jpeg = still(&bytes, 320, &Limits::default()).await.unwrap();
            let frame = image::load_from_memory(&jpeg).unwrap();
            assert_eq!((frame.width(), frame.height()), (320, 180), "{name}");
        } else {
            assert!(
                stream.sample_rate.is_some() && stream.channels.is_some(),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn strangers_and_oversized_files_are_refused() {
    assert!(matches!(
        probe(b"this is not a media file at all", &Limits::default()).await,
        Err(MediaError::Unreadable {
            tool: "ffprobe",
            ..
        })
    ));
    let limits = Limits {
        max_input_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        probe(&[0; 11], &limits).await,
        Err(MediaError::TooLarge {
            size: 11,
            limit: 10
        })
    ));
    let dir = tempfile::tempdir().unwrap();
    let audio = make(dir.path(), "sine=duration=1", &[], "a.wav");
    assert!(matches!(
        still(&audio, 320, &Limits::default()).await,
        Err(MediaError::Unreadable { tool: "ffmpeg", .. } | MediaError::NoFrame)
    ));
}
