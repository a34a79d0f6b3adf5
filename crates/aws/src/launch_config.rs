//! Launch-configuration groups in the adapter: their configurations and the templates made from
//! them read into the snapshot, the template created before the first launch, and the reaper's
//! reads. What to do is decided in [`spotswap_core::launch_config`].

use std::collections::BTreeMap;

use spotswap_core::launch_config::{FromLaunchConfig, LaunchConfig, LcTemplate};
use spotswap_core::{GroupSnapshot, LaunchSource, Outcome};

use crate::port::{op, TemplateCreated};
use crate::{AdapterError, Aws};

/// Most names in one DescribeLaunchConfigurations.
const NAMES_PER_CALL: usize = 50;

/// Fill [`GroupSnapshot::from_launch_config`] for each group of `groups` with a launch
/// configuration: one DescribeLaunchConfigurations per 50 names and one DescribeLaunchTemplates
/// of our tagged templates, none when no group has a configuration. A read that fails leaves
/// the groups unread (`LaunchConfigurationNotSupported`, "not read": no launch this time), with
/// one WARN line.
pub(crate) async fn resolve(aws: &Aws, groups: &mut [GroupSnapshot]) {
    let mut names: Vec<String> = groups
        .iter()
        .filter_map(|g| match &g.launch_source {
            LaunchSource::LaunchConfiguration(lc) => Some(lc.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return;
    }
    let read = async {
        let (configs, templates) = tokio::try_join!(configurations(aws, &names), templates(aws))?;
        Ok::<_, AdapterError>((configs, templates))
    };
    let (configs, templates) = match read.await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(reason = "LaunchConfigurationsUnknown", error = %e, "launch configurations unknown; their groups start no swap");
            return;
        }
    };
    for g in groups.iter_mut() {
        let LaunchSource::LaunchConfiguration(lc) = &g.launch_source else {
            continue;
        };
        let template = templates.iter().find(|t| t.launch_configuration == *lc).cloned();
        g.from_launch_config = Some(FromLaunchConfig::new(lc, configs.get(lc).cloned(), template));
    }
}

async fn configurations(aws: &Aws, names: &[String]) -> Result<BTreeMap<String, LaunchConfig>, AdapterError> {
    let mut out = BTreeMap::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        aws.each_page(
            op::DESCRIBE_LAUNCH_CONFIGS,
            |t| aws.port().launch_configurations(chunk, t),
            |c| {
                out.insert(c.name.clone(), c);
            },
        )
        .await?;
    }
    Ok(out)
}

/// Every template tagged `spotswap:from-launch-configuration`.
pub(crate) async fn templates(aws: &Aws) -> Result<Vec<LcTemplate>, AdapterError> {
    let mut out = Vec::new();
    aws.each_page(
        op::DESCRIBE_TEMPLATES,
        |t| aws.port().lc_templates(t),
        |t| out.push(t),
    )
    .await?;
    Ok(out)
}

/// CreateLaunchTemplate `name` from `config`. A template of that name already there is a
/// concurrent (or crashed) cycle's, taken as made once its tag names the same configuration;
/// one without it is someone else's, and the launch from it is refused.
pub(crate) async fn create(aws: &Aws, name: &str, config: &LaunchConfig) -> Result<Outcome, AdapterError> {
    match aws
        .paced(op::CREATE_TEMPLATE, aws.port().create_template(name, config))
        .await?
    {
        TemplateCreated::Created(_) => Ok(Outcome::Done(None)),
        TemplateCreated::AlreadyExists => {
            let ours = templates(aws)
                .await?
                .into_iter()
                .any(|t| t.name == name && t.launch_configuration == config.name);
            if ours {
                Ok(Outcome::AlreadyDone(format!("launch template {name} exists")))
            } else {
                Err(AdapterError::Invalid(format!(
                    "launch template {name} exists without spotswap:from-launch-configuration={}: not ours to launch from",
                    config.name
                )))
            }
        }
    }
}

/// DeleteLaunchTemplate `id`.
pub(crate) async fn delete(aws: &Aws, id: &str) -> Result<Outcome, AdapterError> {
    aws.paced(op::DELETE_TEMPLATE, aws.port().delete_template(id))
        .await?;
    Ok(Outcome::Done(None))
}
