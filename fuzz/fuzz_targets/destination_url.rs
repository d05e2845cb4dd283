//! `DestinationUrl::parse`: where an admin asks webhooks to be sent. The first byte chooses
//! whether private destinations are allowed; the rest is the URL.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use webhooks::domain::{DestinationUrl, ip_is_private};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let allow_private = flags & 1 == 1;
    let input = String::from_utf8_lossy(rest);
    let Ok(url) = DestinationUrl::parse("webhook.destination_url", &input, allow_private) else {
        return;
    };
    let parsed = url.as_url();
    assert!(matches!(parsed.scheme(), "http" | "https"));
    assert!(parsed.username().is_empty() && parsed.password().is_none());
    let host = parsed.host().expect("an accepted URL has a host");
    if !allow_private {
        match host {
            url::Host::Ipv4(ip) => assert!(!ip_is_private(IpAddr::V4(ip))),
            url::Host::Ipv6(ip) => assert!(!ip_is_private(IpAddr::V6(ip))),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                assert!(name != "localhost" && !name.ends_with(".localhost"));
            }
        }
        assert!(
            DestinationUrl::parse("u", &input, true).is_ok(),
            "allowing more accepts more"
        );
    }
    // The stored form is read back (UpdateWebhook re-parses it with private destinations
    // allowed), so it must parse again, to itself.
    let again = DestinationUrl::parse("u", url.as_str(), true);
    assert_eq!(
        again.as_ref().map(DestinationUrl::as_str),
        Ok(url.as_str()),
        "the stored form of {input:?} parses back"
    );
});
