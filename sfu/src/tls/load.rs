//! Reading a certificate chain and its private key from PEM files into a
//! rustls [`CertifiedKey`], with errors that name the file and the
//! problem and never quote the key.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Largest certificate or key file read: a chain of a few certificates is
/// a few kilobytes, and a path pointing at something endless (a device,
/// a pipe) must not hang or fill memory.
pub const MAX_PEM_FILE_BYTES: u64 = 1 << 20;

/// Why a certificate and key pair could not be loaded. Each message names
/// the setting and the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {setting} {}: {cause}", path.display())]
    Read {
        /// `tls_cert` or `tls_key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (not the error's `source`: the message holds it, and a
        /// chain printer would repeat it).
        cause: std::io::Error,
    },
    /// The file is larger than [`MAX_PEM_FILE_BYTES`].
    #[error("{setting} {} is larger than {MAX_PEM_FILE_BYTES} bytes, so it is no PEM certificate or key", path.display())]
    TooLarge {
        /// `tls_cert` or `tls_key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The file is not well-formed PEM.
    #[error("{setting} {} is not valid PEM: {problem}", path.display())]
    BadPem {
        /// `tls_cert` or `tls_key`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, in words that quote nothing from the file.
        problem: &'static str,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("tls_cert {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key section.
    #[error(
        "tls_key {} holds no PEM private key (PKCS#8 \"PRIVATE KEY\", RSA or EC)",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is not one the TLS library can sign with.
    #[error("tls_key {} is not a usable private key: {cause}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Why (in the message).
        cause: rustls::Error,
    },
    /// The first certificate cannot be parsed.
    #[error("tls_cert {}: the first certificate is not a valid X.509 certificate ({problem})", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What the parser found wrong.
        problem: String,
    },
    /// The TLS library refused its own settings (a bug, not a file
    /// problem).
    #[error("cannot set up TLS: {0}")]
    Library(rustls::Error),
    /// The key is not the one the first certificate was issued for.
    #[error(
        "tls_key {} does not match the certificate in tls_cert {}: they are not a pair \
         (the server's own certificate must come first in tls_cert)",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// The chain in `cert` and the key in `key`, checked to be a pair.
pub(super) fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(cert)?;
    let private = read_key(key)?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|cause| TlsError::BadKey {
            path: key.to_path_buf(),
            cause,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // Unknown: the key cannot tell its public half; rustls serves
        // such pairs, and so do we.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        Err(e) => Err(TlsError::BadCertificate {
            path: cert.to_path_buf(),
            // rustls words it as the peer's certificate ("invalid peer
            // certificate: BadEncoding"); here it is our own.
            problem: match e {
                rustls::Error::InvalidCertificate(why) => format!("{why:?}"),
                other => other.to_string(),
            },
        }),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read("tls_cert", path)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem("tls_cert", path, &e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read("tls_key", path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        other => bad_pem("tls_key", path, &other),
    })
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |cause| TlsError::Read {
        setting,
        path: path.to_path_buf(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(TlsError::TooLarge {
            setting,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The PEM parser's errors quote the file's lines; ours say what is wrong
/// without them, since the file may be a key.
fn bad_pem(setting: &'static str, path: &Path, e: &pem::Error) -> TlsError {
    let problem = match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no -----END line",
        pem::Error::IllegalSectionStart { .. } => "a -----BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be parsed",
    };
    TlsError::BadPem {
        setting,
        path: path.to_path_buf(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::aws_lc_rs::default_provider()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let pem = crate::cert_cmd::self_signed(&["localhost".into()]).expect("pair");
        (
            write(dir, &format!("{name}.crt"), &pem.cert_pem),
            write(dir, &format!("{name}.key"), &pem.key_pem),
        )
    }

    #[test]
    fn a_pair_loads_and_a_chain_keeps_its_order() {
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key) = pair(dir.path(), "a");
        let (other, _) = pair(dir.path(), "b");
        let chain = format!(
            "{}{}",
            std::fs::read_to_string(&cert).expect("read"),
            std::fs::read_to_string(&other).expect("read")
        );
        let chain = write(dir.path(), "chain.crt", &chain);
        let loaded = certified_key(&chain, &key, &provider()).expect("loads");
        assert_eq!(loaded.cert.len(), 2);
        let own = CertificateDer::from_pem_file(&cert).expect("cert");
        assert_eq!(loaded.cert[0], own, "the server's own certificate first");
    }

    #[test]
    fn each_problem_names_its_file_and_quotes_no_key() {
        let dir = tempfile::tempdir().expect("dir");
        let (a_cert, a_key) = pair(dir.path(), "a");
        let (b_cert, _) = pair(dir.path(), "b");
        let secret = "c2VjcmV0IGtleSBtYXRlcmlhbA==";
        let truncated = write(
            dir.path(),
            "truncated.key",
            &format!("-----BEGIN PRIVATE KEY-----\n{secret}\n"),
        );
        let not_base64 = write(
            dir.path(),
            "bad64.key",
            &format!("-----BEGIN PRIVATE KEY-----\n{secret}!\n-----END PRIVATE KEY-----\n"),
        );
        let not_a_key = write(
            dir.path(),
            "junk.key",
            &format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
        );
        let empty = write(dir.path(), "empty.crt", "");
        let not_x509 = write(
            dir.path(),
            "junk.crt",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let big = dir.path().join("big.crt");
        std::fs::write(&big, vec![b'A'; (MAX_PEM_FILE_BYTES + 1) as usize]).expect("write");
        let missing = dir.path().join("missing.crt");
        let cases: [(&Path, &Path, &str); 9] = [
            (&missing, &a_key, "cannot read tls_cert"),
            (&a_cert, dir.path(), "cannot read tls_key"),
            (&big, &a_key, "larger than"),
            (&empty, &a_key, "holds no PEM certificate"),
            (&not_x509, &a_key, "not a valid X.509 certificate"),
            (&a_cert, &truncated, "no -----END line"),
            (&a_cert, &not_base64, "not valid base64"),
            (&a_cert, &not_a_key, "not a usable private key"),
            (&b_cert, &a_key, "does not match"),
        ];
        for (cert, key, expected) in cases {
            let e = certified_key(cert, key, &provider()).expect_err(expected);
            let text = e.to_string();
            assert!(text.contains(expected), "{text}");
            let named = if text.starts_with("cannot read tls_key") || text.starts_with("tls_key") {
                key
            } else {
                cert
            };
            assert!(text.contains(&named.display().to_string()), "{text}");
            assert!(!text.contains(secret), "key quoted: {text}");
            assert!(!text.contains('\n'), "one line: {text}");
        }
    }
}
