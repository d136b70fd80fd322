//! The compiled-template cache: a template is compiled once per version and
//! shared by every render that uses it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Channel, CompiledTemplate, RenderLimits, TemplateError, TemplateParts};
use crate::request::{CompanyId, TemplateId};

/// Identifies one compiled bundle. Stored templates are keyed by version
/// when they have one; inline templates and unversioned ones by content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    pub company_id: CompanyId,
    pub template_id: Option<TemplateId>,
    pub revision: Revision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Revision {
    Version(u32),
    ContentHash(u64),
}

impl TemplateKey {
    /// The key of a stored template version.
    pub fn stored(company_id: CompanyId, template_id: TemplateId, version: u32) -> Self {
        Self {
            company_id,
            template_id: Some(template_id),
            revision: Revision::Version(version),
        }
    }

    pub fn new(
        company_id: CompanyId,
        template_id: Option<TemplateId>,
        version: Option<u32>,
        parts: &TemplateParts,
    ) -> Self {
        let revision = match version {
            Some(version) => Revision::Version(version),
            None => Revision::ContentHash(parts.content_hash()),
        };
        Self {
            company_id,
            template_id,
            revision,
        }
    }
}

/// A bounded map from [`TemplateKey`] to compiled templates, shared across
/// threads. Compile errors are not cached: a fixed template is picked up on
/// the next request.
#[derive(Debug)]
pub struct TemplateCache {
    capacity: usize,
    limits: RenderLimits,
    entries: RwLock<HashMap<TemplateKey, Arc<CompiledTemplate>>>,
}

impl TemplateCache {
    pub fn new(capacity: usize, limits: RenderLimits) -> Self {
        Self {
            capacity: capacity.max(1),
            limits,
            entries: RwLock::default(),
        }
    }

    pub fn limits(&self) -> &RenderLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The compiled template for `key`, compiling `parts` on a miss.
    pub fn get_or_compile(
        &self,
        key: &TemplateKey,
        channel: Channel,
        parts: &TemplateParts,
    ) -> Result<Arc<CompiledTemplate>, TemplateError> {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let name = key.template_id.as_ref().map_or("inline", |id| id.as_str());
        let version = match (&key.template_id, key.revision) {
            (Some(_), Revision::Version(version)) => Some(version),
            _ => None,
        };
        let compiled = Arc::new(
            CompiledTemplate::compile(name, channel, parts, &self.limits)?.with_version(version),
        );
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            // Any victim will do: a template evicted while still in use is
            // simply compiled again.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        Ok(entries.entry(key.clone()).or_insert(compiled).clone())
    }

    /// The compiled template for `key`, if cached.
    pub fn get(&self, key: &TemplateKey) -> Option<Arc<CompiledTemplate>> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}
