//! Launch configurations and the templates made from them, in the fake region.

use spotswap_core::launch_config::{LaunchConfig, LcTemplate};

use super::FakePort;
use crate::port::{op, LaunchConfigCalls, Page, PortFuture, TemplateCreated};

/// Served as EC2 and Auto Scaling do: DescribeLaunchConfigurations lists the named ones it
/// knows, CreateLaunchTemplate refuses a name in use, DeleteLaunchTemplate an unknown id.
impl LaunchConfigCalls for FakePort {
    fn launch_configurations<'a>(
        &'a self,
        names: &'a [String],
        _token: Option<String>,
    ) -> PortFuture<'a, Page<LaunchConfig>> {
        self.call(op::DESCRIBE_LAUNCH_CONFIGS, move |s| {
            Ok(Page {
                items: names
                    .iter()
                    .filter_map(|n| s.launch_configs.get(n).cloned())
                    .collect(),
                next: None,
            })
        })
    }

    fn lc_templates(&self, _token: Option<String>) -> PortFuture<'_, Page<LcTemplate>> {
        self.call(op::DESCRIBE_TEMPLATES, |s| {
            Ok(Page {
                items: s
                    .templates
                    .iter()
                    .filter_map(|(name, (id, lc))| {
                        Some(LcTemplate {
                            id: id.clone(),
                            name: name.clone(),
                            launch_configuration: lc.clone()?,
                        })
                    })
                    .collect(),
                next: None,
            })
        })
    }

    fn create_template<'a>(
        &'a self,
        name: &'a str,
        config: &'a LaunchConfig,
    ) -> PortFuture<'a, TemplateCreated> {
        self.call(op::CREATE_TEMPLATE, move |s| {
            if s.templates.contains_key(name) {
                return Ok(TemplateCreated::AlreadyExists);
            }
            let id = format!("lt-{:017}", s.templates.len() + 1);
            s.templates
                .insert(name.to_string(), (id.clone(), Some(config.name.clone())));
            Ok(TemplateCreated::Created(id))
        })
    }

    fn delete_template<'a>(&'a self, id: &'a str) -> PortFuture<'a, ()> {
        self.call(op::DELETE_TEMPLATE, move |s| {
            let Some(name) = s
                .templates
                .iter()
                .find(|(_, (i, _))| i == id)
                .map(|(n, _)| n.clone())
            else {
                return Err(super::aws_error(
                    op::DELETE_TEMPLATE,
                    "InvalidLaunchTemplateId.NotFound",
                    id,
                ));
            };
            s.templates.remove(&name);
            Ok(())
        })
    }
}
