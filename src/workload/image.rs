//! The multimodal test's image: read once, type taken from its magic bytes, sent as a data URL.

use base64::Engine;
use std::path::Path;

#[derive(Clone)]
pub struct ImageData {
    pub mime: &'static str,
    pub len: usize,
    data_url: std::sync::Arc<str>,
}

impl std::fmt::Debug for ImageData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageData({}, {} bytes)", self.mime, self.len)
    }
}

/// The image type from the file's first bytes, whatever its name says.
pub fn sniff_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

impl ImageData {
    /// Reads and checks the image; every failure is one sentence naming the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        if path.is_dir() {
            return Err(format!(
                "image {shown} is a directory; give an image file with -ip/--image-path"
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("image {shown} does not exist; give an existing jpg/png/gif/webp file with -ip/--image-path")
            }
            _ => format!("cannot read image {shown}: {e}"),
        })?;
        Self::from_bytes(bytes, &shown.to_string())
    }

    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Self, String> {
        if bytes.is_empty() {
            return Err(format!("image {name} is empty"));
        }
        let mime = sniff_mime(&bytes).ok_or_else(|| {
            format!("{name} is not a JPEG, PNG, GIF or WebP image (checked its content, not its name)")
        })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        Ok(Self {
            mime,
            len: bytes.len(),
            data_url: format!("data:{mime};base64,{encoded}").into(),
        })
    }

    pub fn data_url(&self) -> &str {
        &self.data_url
    }

    /// The data URL, shared (a request body copies it once, when it is written).
    pub fn data_url_arc(&self) -> std::sync::Arc<str> {
        self.data_url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(sniff_mime(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_mime(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_mime(b"hello world"), None);
        assert_eq!(sniff_mime(b""), None);
    }

    #[test]
    fn png_named_jpg_is_png() {
        let image = ImageData::from_bytes(b"\x89PNG\r\n\x1a\nxxxx".to_vec(), "photo.jpg").unwrap();
        assert_eq!(image.mime, "image/png");
        assert!(image.data_url().starts_with("data:image/png;base64,iVBORw0KG"));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ImageData::load(&dir.path().join("nope.jpg")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        assert!(ImageData::load(dir.path()).unwrap_err().contains("directory"));
        let empty = dir.path().join("empty.jpg");
        std::fs::write(&empty, b"").unwrap();
        assert!(ImageData::load(&empty).unwrap_err().contains("empty"));
        let text = dir.path().join("text.jpg");
        std::fs::write(&text, b"just text").unwrap();
        assert!(ImageData::load(&text).unwrap_err().contains("not a JPEG"));
    }
}
