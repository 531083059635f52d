//! Install secrets kept next to the data (token signing secret, settings encryption key) and
//! the AES-256-GCM cipher that keeps provider API keys encrypted at rest.

use std::path::Path;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Name of the generated settings key file under the data dir (the reference's name, so a
/// data dir it wrote keeps decrypting).
pub const ENCRYPTION_KEY_FILE: &str = ".encryption_key";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Read a 32-byte-or-longer secret from `path`, or create it with 32 random bytes and
/// owner-only permissions.
pub fn key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is shorter than 32 bytes; delete it to generate a new one (secrets \
                 encrypted with the old one are then lost)",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut secret = vec![0u8; 32];
    OsRng.fill_bytes(&mut secret);
    write_private(path, &secret)?;
    Ok(secret)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    #[error("CONFIG_ENCRYPTION_KEY must be at least 32 characters")]
    ShortKey,
    #[error("cannot read or create the encryption key file {path}: {message}")]
    KeyFile { path: String, message: String },
    #[error("stored value is not valid base64")]
    Encoding,
    #[error("stored value cannot be decrypted (was the encryption key changed?)")]
    Decrypt,
}

/// AES-256-GCM with a random 96-bit nonce per value; stored as
/// `base64(nonce || ciphertext || tag)`, the reference's layout.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl Cipher {
    /// `CONFIG_ENCRYPTION_KEY` (at least 32 characters; the first 32 bytes are the key) or
    /// else `<data-dir>/.encryption_key`, generated on first start.
    pub fn load(data_dir: &Path, env_key: Option<&str>) -> Result<Cipher, CipherError> {
        match env_key.filter(|k| !k.is_empty()) {
            Some(key) if key.len() < 32 => Err(CipherError::ShortKey),
            Some(key) => Ok(Cipher::from_material(key.as_bytes())),
            None => {
                let path = data_dir.join(ENCRYPTION_KEY_FILE);
                let bytes = key_file(&path).map_err(|e| CipherError::KeyFile {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                Ok(Cipher::from_material(&bytes))
            }
        }
    }

    /// The key is the first 32 bytes of `material`, zero-padded when shorter.
    pub fn from_material(material: &[u8]) -> Cipher {
        let mut key = [0u8; 32];
        let n = material.len().min(32);
        key[..n].copy_from_slice(&material[..n]);
        Cipher(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)))
    }

    pub fn encrypt(&self, plain: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let sealed = self.0.encrypt(&nonce, plain.as_bytes()).unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CipherError> {
        let bytes = STANDARD
            .decode(stored.trim())
            .map_err(|_| CipherError::Encoding)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(CipherError::Decrypt);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CipherError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CipherError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let cipher = Cipher::from_material(b"0123456789abcdef0123456789abcdef-ignored-tail");
        let a = cipher.encrypt("sk-secret");
        let b = cipher.encrypt("sk-secret");
        assert_ne!(a, b, "every value gets its own nonce");
        assert!(!a.contains("sk-secret"));
        assert_eq!(cipher.decrypt(&a).unwrap(), "sk-secret");
        let raw = STANDARD.decode(&a).unwrap();
        assert_eq!(raw.len(), NONCE_LEN + "sk-secret".len() + TAG_LEN);
    }

    #[test]
    fn only_the_first_32_bytes_count_and_other_keys_fail() {
        let a = Cipher::from_material(b"0123456789abcdef0123456789abcdefXXXX");
        let b = Cipher::from_material(b"0123456789abcdef0123456789abcdefYYYY");
        let other = Cipher::from_material(b"another key that is 32 chars long!");
        let sealed = a.encrypt("value");
        assert_eq!(b.decrypt(&sealed).unwrap(), "value");
        assert_eq!(other.decrypt(&sealed), Err(CipherError::Decrypt));
        assert_eq!(a.decrypt("not base64!"), Err(CipherError::Encoding));
        assert_eq!(a.decrypt("AAAA"), Err(CipherError::Decrypt));
    }

    #[test]
    fn env_key_must_be_long_enough_and_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Cipher::load(dir.path(), Some("short")),
            Err(CipherError::ShortKey)
        ));
        let first = Cipher::load(dir.path(), None).unwrap();
        let sealed = first.encrypt("v");
        let again = Cipher::load(dir.path(), None).unwrap();
        assert_eq!(again.decrypt(&sealed).unwrap(), "v");
        let path = dir.path().join(ENCRYPTION_KEY_FILE);
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
