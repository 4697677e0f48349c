//! TLS set-up shared by every HTTPS client of recops (Slack webhooks, the deployer,
//! the health check, the demo): rustls with the `ring` crypto provider.

/// Installs rustls' `ring` crypto provider as the process default, once; later calls
/// (and a provider installed by someone else) are fine. Call it before building a
/// reqwest client (reqwest is built with `rustls-no-provider`).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn installs_a_provider_and_can_be_called_again() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
