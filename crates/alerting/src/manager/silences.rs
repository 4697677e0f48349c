//! Silences and stored alert states.

use super::*;

impl AlertManager {
    /// Sets (or replaces) a silence: until `until`, alerts named `matcher` (or
    /// starting with it when it ends in `*`) are not sent by e-mail or Slack; the log
    /// still records them.
    pub fn silence(&self, matcher: &str, until: DateTime<Utc>, reason: &str) -> Result<Silence> {
        let matcher = matcher.trim();
        let plain = matcher.strip_suffix('*').unwrap_or(matcher);
        if !(is_plain_name(plain) || (matcher == "*")) {
            return Err(Error::InvalidInput {
                what: "alert name",
                message: format!(
                    "{matcher:?}: expected an alert name of lowercase letters, digits and '_', \
                     optionally ending in '*' to match a prefix"
                ),
            });
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::InvalidInput {
                what: "reason",
                message: "say why the alert is silenced (--reason)".into(),
            });
        }
        let now = self.clock.now();
        if until <= now {
            return Err(Error::InvalidInput {
                what: "silence end",
                message: format!("{until} is not in the future"),
            });
        }
        let store = self.store()?;
        let silence = Silence {
            matcher: matcher.to_owned(),
            until,
            reason: reason.to_owned(),
            created_at: now,
            created_by: who(),
        };
        store.put_silence(&silence)?;
        self.log(
            LogLevel::Info,
            &format!(
                "Silence set: {matcher} until {} ({reason})",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
        );
        Ok(silence)
    }

    /// [`AlertManager::silence`] for `duration` from now.
    pub fn silence_for(&self, matcher: &str, duration: Duration, reason: &str) -> Result<Silence> {
        self.silence(matcher, self.clock.now() + duration, reason)
    }

    /// Ends the silence of `matcher`; false when there was none.
    pub fn unsilence(&self, matcher: &str) -> Result<bool> {
        let removed = self.store()?.remove_silence(matcher.trim())?;
        if removed {
            self.log(
                LogLevel::Info,
                &format!("Silence removed: {}", matcher.trim()),
            );
        }
        Ok(removed)
    }

    /// Silences in force now.
    pub fn silences(&self) -> Result<Vec<Silence>> {
        let now = self.clock.now();
        Ok(self
            .store()?
            .silences()?
            .into_iter()
            .filter(|s| s.is_active(now))
            .collect())
    }

    /// Every stored alert state.
    pub fn states(&self) -> Result<Vec<AlertState>> {
        self.store()?.states()
    }

    pub(super) fn active_silence(&self, name: &str, now: DateTime<Utc>) -> Option<Silence> {
        let store = self.state.as_deref().ok()?;
        match store.active_silence(name, now) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(alert = name, error = %error_chain(&e), "cannot read silences; sending anyway");
                None
            }
        }
    }
}
