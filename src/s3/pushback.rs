//! Counts S3's answers that ask us to slow down (503, 429), every attempt
//! included: the SDK retries such an answer itself, and a retry that
//! succeeds would otherwise hide the push-back from the concurrency
//! controller.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;

/// Called once per answer that asks us to slow down.
pub type OnSlowDown = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Whether an HTTP status asks the client to slow down.
fn asks_to_slow_down(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// The client with `on` called for each slow-down answer it receives.
pub(super) fn counting(client: &Client, on: OnSlowDown) -> Client {
    let config = client
        .config()
        .to_builder()
        .interceptor(CountSlowDowns(on))
        .build();
    Client::from_conf(config)
}

struct CountSlowDowns(OnSlowDown);

impl std::fmt::Debug for CountSlowDowns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountSlowDowns")
    }
}

impl Intercept for CountSlowDowns {
    fn name(&self) -> &'static str {
        "CountSlowDowns"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if asks_to_slow_down(context.response().status().as_u16()) {
            (self.0)();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_503_and_429_ask_to_slow_down() {
        assert!(asks_to_slow_down(503));
        assert!(asks_to_slow_down(429));
        for other in [200, 404, 412, 500, 502] {
            assert!(!asks_to_slow_down(other), "{other}");
        }
    }
}
