//! The access audit over live traffic: workers render a deterministic sample
//! of recipients with the instrumented context and add what they read to
//! their company's audit, which the API serves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use artifact_render::audit::{Audit, AuditReport};
use artifact_render::context::audit::AccessRecorder;
use artifact_render::request::{CompanyId, ProfileId, RecipientId, RequestId};
use artifact_render::{PreparedRequest, RenderRequest};

/// Audited renders kept per company; past it, that company's sampling
/// pauses until its audit is read and reset. Bounds the audit's memory.
pub const MAX_AUDITED_RENDERS: usize = 10_000;

/// The sample fraction and every company's audit so far.
pub struct TrafficAudit {
    sample: f64,
    companies: Mutex<HashMap<CompanyId, CompanyAudit>>,
}

#[derive(Default)]
struct CompanyAudit {
    audit: Audit,
    renders: usize,
}

impl std::fmt::Debug for TrafficAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficAudit")
            .field("sample", &self.sample)
            .finish_non_exhaustive()
    }
}

/// A company's audit as the API serves it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrafficReport {
    /// The fraction of recipients audited.
    pub sample: f64,
    /// Audited renders so far; sampling pauses at [`MAX_AUDITED_RENDERS`].
    pub audited_renders: usize,
    #[serde(flatten)]
    pub report: AuditReport,
}

impl TrafficAudit {
    /// Audits `sample` (0 < sample ≤ 1) of the recipients.
    pub fn new(sample: f64) -> Result<Self, String> {
        if !(sample > 0.0 && sample <= 1.0) {
            return Err(format!(
                "audit sample {sample}: must be a fraction above 0 and at most 1"
            ));
        }
        Ok(Self {
            sample,
            companies: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CompanyId, CompanyAudit>> {
        self.companies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether recipient `recipient` of `request` is audited: the same
    /// recipients on every run of this build, so a rerun audits them again.
    pub fn picks(&self, request: &RenderRequest, recipient: &RecipientId) -> bool {
        // The hash first: most recipients are not sampled, and they never
        // touch the lock.
        in_sample(self.sample, request.request_id(), recipient)
            && self
                .lock()
                .get(request.company_id())
                .is_none_or(|company| company.renders < MAX_AUDITED_RENDERS)
    }

    /// Adds one audited render of `prepared` for profile `profile_id`.
    pub fn add(
        &self,
        prepared: &PreparedRequest,
        profile_id: &ProfileId,
        profile: &serde_json::Value,
        recorder: &AccessRecorder,
    ) {
        let mut companies = self.lock();
        let company = companies
            .entry(prepared.request().company_id().clone())
            .or_default();
        company.renders += 1;
        company.audit.add_render(prepared.template(), recorder);
        company.audit.add_profile(profile_id.as_str(), profile);
    }

    /// `company`'s audit so far; `None` before its first audited render.
    pub fn report(&self, company: &CompanyId) -> Option<TrafficReport> {
        let companies = self.lock();
        let audited = companies.get(company)?;
        Some(TrafficReport {
            sample: self.sample,
            audited_renders: audited.renders,
            report: audited.audit.report(),
        })
    }

    /// Forgets `company`'s audit, so sampling starts over.
    pub fn reset(&self, company: &CompanyId) {
        self.lock().remove(company);
    }
}

fn in_sample(sample: f64, request: &RequestId, recipient: &RecipientId) -> bool {
    // The canary's hash, fixed across builds; the audit's own key, so the
    // audited recipients are not the canary's.
    crate::canary::position(&["audit", request.as_str(), recipient.as_str()]) < sample
}

/// Renders `recipient` audited into `audit` when it is in the sample, plainly
/// otherwise. `profile` must be the whole profile for a sampled recipient.
pub(crate) fn render(
    audit: Option<&Arc<TrafficAudit>>,
    prepared: &PreparedRequest,
    recipient: &artifact_render::request::RenderRecipient,
    profile: Option<&Arc<serde_json::Value>>,
) -> artifact_render::Artifact {
    match (audit, profile) {
        (Some(audit), Some(profile))
            if audit.picks(prepared.request(), &recipient.recipient_id) =>
        {
            let recorder = Arc::new(AccessRecorder::default());
            let artifact = prepared.render_audited(recipient, Some(profile), &recorder);
            audit.add(prepared, &recipient.profile_id, profile, &recorder);
            artifact
        }
        _ => prepared.render(recipient, profile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_deterministic_and_near_its_fraction() {
        let request = RequestId::parse("req-1").unwrap();
        let ids: Vec<RecipientId> = (0..20_000)
            .map(|i| RecipientId::parse(&format!("r{i}")).unwrap())
            .collect();
        let picked = |sample| {
            ids.iter()
                .filter(|id| in_sample(sample, &request, id))
                .count()
        };
        let tenth = picked(0.1);
        // 20,000 draws at p = 0.1: the standard deviation is about 42.
        assert!((1_800..=2_200).contains(&tenth), "{tenth}");
        assert_eq!(picked(0.1), tenth, "the same recipients every time");
        assert_eq!(picked(1.0), ids.len());
    }

    #[test]
    fn a_sample_outside_0_to_1_is_refused() {
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            let error = TrafficAudit::new(bad).unwrap_err();
            assert!(
                error.contains("must be a fraction above 0 and at most 1"),
                "{error}"
            );
        }
    }
}
