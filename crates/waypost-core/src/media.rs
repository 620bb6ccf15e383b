//! Media rules: the kinds WhatsApp sends (image, audio, video, document,
//! sticker), the MIME types and sizes Meta accepts for each, a light check
//! that a file's first bytes fit the type it claims, and safe download names.
//! The table follows the Cloud API's media reference (sizes in MiB, as the
//! sandbox counts them).

use std::fmt;

const MIB: usize = 1024 * 1024;

/// The largest media file of any kind (documents).
pub const MAX_MEDIA_BYTES: usize = 100 * MIB;
/// Days an uploaded media id stays usable at the provider.
pub const UPLOAD_LIFETIME_DAYS: i64 = 30;
/// Days the provider keeps media a customer sent.
pub const INBOUND_LIFETIME_DAYS: i64 = 7;
/// Longest download name kept.
const MAX_FILENAME_CHARS: usize = 100;

/// What kind of media message a file is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Audio,
    Video,
    Document,
    Sticker,
}

impl MediaKind {
    pub const ALL: [MediaKind; 5] = [
        MediaKind::Image,
        MediaKind::Audio,
        MediaKind::Video,
        MediaKind::Document,
        MediaKind::Sticker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The MIME types (essences) Meta accepts for this kind.
    pub fn mime_types(self) -> &'static [&'static str] {
        match self {
            MediaKind::Image => &["image/jpeg", "image/png"],
            MediaKind::Audio => &[
                "audio/aac",
                "audio/amr",
                "audio/mpeg",
                "audio/mp4",
                "audio/ogg",
            ],
            MediaKind::Video => &["video/mp4", "video/3gpp"],
            MediaKind::Document => &[
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            ],
            MediaKind::Sticker => &["image/webp"],
        }
    }

    /// The kind a MIME type is sent as when the caller does not say.
    pub fn of_mime(mime: &str) -> Option<Self> {
        let e = essence(mime);
        Self::ALL
            .into_iter()
            .find(|k| k.mime_types().contains(&e.as_str()))
    }

    pub fn accepts(self, mime: &str) -> bool {
        self.mime_types().contains(&essence(mime).as_str())
    }

    /// Meta's size limit; stickers may be larger when animated.
    pub fn max_bytes(self, animated: bool) -> usize {
        match self {
            MediaKind::Image => 5 * MIB,
            MediaKind::Audio | MediaKind::Video => 16 * MIB,
            MediaKind::Document => MAX_MEDIA_BYTES,
            MediaKind::Sticker if animated => 500 * 1024,
            MediaKind::Sticker => 100 * 1024,
        }
    }

    /// The largest file of this kind in any variant (for refusing early while reading).
    pub fn upper_bound(self) -> usize {
        self.max_bytes(true)
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file cannot be sent as media.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaRefusal {
    #[error("{mime} is not a type WhatsApp accepts{}", for_kind(*.kind))]
    UnsupportedType {
        mime: String,
        kind: Option<MediaKind>,
    },
    #[error("{size} bytes; {kind}{} files may have at most {limit} bytes", if *.animated { " (animated)" } else { "" })]
    TooLarge {
        kind: MediaKind,
        animated: bool,
        size: usize,
        limit: usize,
    },
    #[error("the file's content is not {mime}")]
    ContentMismatch { mime: String },
    #[error("the file is empty")]
    Empty,
}

fn for_kind(kind: Option<MediaKind>) -> String {
    kind.map(|k| format!(" as {k}; {k} takes {}", k.mime_types().join(", ")))
        .unwrap_or_default()
}

/// The kind of a file, checked against Meta's table: the type is supported
/// (for `wanted` when given), the size within the limit, and the first bytes
/// fit the type.
pub fn check_file(
    mime: &str,
    wanted: Option<MediaKind>,
    bytes: &[u8],
) -> Result<MediaKind, MediaRefusal> {
    let unsupported = || MediaRefusal::UnsupportedType {
        mime: essence(mime),
        kind: wanted,
    };
    let kind = match wanted {
        Some(k) if k.accepts(mime) => k,
        // An image sent as a document is fine for Meta only with a document type.
        Some(_) => return Err(unsupported()),
        None => MediaKind::of_mime(mime).ok_or_else(unsupported)?,
    };
    if bytes.is_empty() {
        return Err(MediaRefusal::Empty);
    }
    let animated = kind == MediaKind::Sticker && is_animated_webp(bytes);
    let limit = kind.max_bytes(animated);
    if bytes.len() > limit {
        return Err(MediaRefusal::TooLarge {
            kind,
            animated,
            size: bytes.len(),
            limit,
        });
    }
    if !looks_like(mime, bytes) {
        return Err(MediaRefusal::ContentMismatch {
            mime: essence(mime),
        });
    }
    Ok(kind)
}

/// `type/subtype` in lower case, without parameters.
pub fn essence(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// An animated WebP has the `VP8X` header with its animation flag set.
pub fn is_animated_webp(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && &bytes[0..4] == b"RIFF"
        && &bytes[8..12] == b"WEBP"
        && &bytes[12..16] == b"VP8X"
        && bytes[20] & 0x02 != 0
}

/// Whether the first bytes fit the claimed type, for the types with a
/// signature; plain text has none. Catches a mislabelled file before the
/// provider does (and before a customer's phone shows a broken image).
pub fn looks_like(mime: &str, b: &[u8]) -> bool {
    let starts = |sig: &[u8]| b.starts_with(sig);
    match essence(mime).as_str() {
        "image/jpeg" => starts(&[0xFF, 0xD8, 0xFF]),
        "image/png" => starts(b"\x89PNG\r\n\x1a\n"),
        "image/webp" => b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP",
        "application/pdf" => starts(b"%PDF-"),
        "video/mp4" | "video/3gpp" | "audio/mp4" => b.len() >= 8 && &b[4..8] == b"ftyp",
        "audio/ogg" => starts(b"OggS"),
        "audio/amr" => starts(b"#!AMR"),
        "audio/mpeg" => starts(b"ID3") || (b.len() >= 2 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0),
        "audio/aac" => starts(b"ADIF") || (b.len() >= 2 && b[0] == 0xFF && b[1] & 0xF6 == 0xF0),
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" => {
            starts(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
        }
        e if e.starts_with("application/vnd.openxmlformats-officedocument.") => {
            starts(b"PK\x03\x04")
        }
        _ => true,
    }
}

/// A usual file extension for a supported type, for download names.
pub fn extension(mime: &str) -> &'static str {
    match essence(mime).as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "audio/ogg" => "ogg",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "text/plain" => "txt",
        "application/pdf" => "pdf",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => "bin",
    }
}

/// A file name safe in a `Content-Disposition` header and on any file
/// system: the last path part, ASCII letters, digits and `._- ` only (others
/// become `_`), no leading dots, at most 100 characters; `None` when nothing is left.
pub fn safe_filename(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_FILENAME_CHARS)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    (!trimmed.is_empty() && trimmed.chars().any(|c| c.is_ascii_alphanumeric()))
        .then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10];

    #[test]
    fn kinds_follow_the_mime_table() {
        assert_eq!(MediaKind::of_mime("image/jpeg"), Some(MediaKind::Image));
        assert_eq!(MediaKind::of_mime("IMAGE/PNG"), Some(MediaKind::Image));
        assert_eq!(MediaKind::of_mime("image/webp"), Some(MediaKind::Sticker));
        assert_eq!(
            MediaKind::of_mime("audio/ogg; codecs=opus"),
            Some(MediaKind::Audio)
        );
        assert_eq!(
            MediaKind::of_mime("application/pdf"),
            Some(MediaKind::Document)
        );
        assert_eq!(MediaKind::of_mime("image/gif"), None);
        assert_eq!(MediaKind::of_mime("text/html"), None);
    }

    #[test]
    fn limits_and_refusals() {
        assert_eq!(check_file("image/jpeg", None, JPEG), Ok(MediaKind::Image));
        let mut big = JPEG.to_vec();
        big.resize(5 * MIB + 1, 0);
        assert!(matches!(
            check_file("image/jpeg", None, &big),
            Err(MediaRefusal::TooLarge { limit, .. }) if limit == 5 * MIB
        ));
        assert!(matches!(
            check_file("image/gif", None, b"GIF89a"),
            Err(MediaRefusal::UnsupportedType { .. })
        ));
        assert!(matches!(
            check_file("image/jpeg", Some(MediaKind::Document), JPEG),
            Err(MediaRefusal::UnsupportedType { .. })
        ));
        assert_eq!(
            check_file("image/png", None, JPEG),
            Err(MediaRefusal::ContentMismatch {
                mime: "image/png".into()
            })
        );
        assert_eq!(
            check_file("text/plain", None, b""),
            Err(MediaRefusal::Empty)
        );
    }

    #[test]
    fn animated_stickers_may_be_larger() {
        let mut still = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
        still.resize(200 * 1024, 0);
        assert!(matches!(
            check_file("image/webp", None, &still),
            Err(MediaRefusal::TooLarge { limit, .. }) if limit == 100 * 1024
        ));
        let mut animated = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\x02".to_vec();
        animated.resize(200 * 1024, 0);
        assert!(is_animated_webp(&animated));
        assert_eq!(
            check_file("image/webp", None, &animated),
            Ok(MediaKind::Sticker)
        );
    }

    #[test]
    fn filenames_are_made_safe() {
        assert_eq!(
            safe_filename("invoice 12.pdf").as_deref(),
            Some("invoice 12.pdf")
        );
        assert_eq!(safe_filename("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            safe_filename("C:\\x\\a\"b\r\n.pdf").as_deref(),
            Some("a_b__.pdf")
        );
        assert_eq!(safe_filename("..."), None);
        assert_eq!(safe_filename("ünï.txt").as_deref(), Some("_n_.txt"));
        assert_eq!(safe_filename(&"a".repeat(300)).unwrap().len(), 100);
    }
}
