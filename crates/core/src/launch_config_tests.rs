use super::*;
use crate::action::LaunchSpec;

fn lc(name: &str) -> LaunchConfig {
    LaunchConfig {
        name: name.into(),
        instance_type: "m5.large".into(),
        image_id: "ami-12345678".into(),
        ..LaunchConfig::default()
    }
}

fn group(from: Option<FromLaunchConfig>) -> GroupSnapshot {
    let mut g = crate::testkit::Fleet::new().group;
    g.launch_source = LaunchSource::LaunchConfiguration("web-lc".into());
    g.from_launch_config = from;
    g
}

fn launch() -> Action {
    let spec = LaunchSpec {
        replaces: "i-1".into(),
        subnet_id: "subnet-1".into(),
        launch_template: LaunchTemplateRef {
            id: None,
            name: Some(template_name("web-lc")),
            version: "1".into(),
        },
        candidates: Vec::new(),
        client_token: String::new(),
        tags: Vec::new(),
        purchase: crate::action::Purchase::Spot,
    };
    Action::new(ActionKind::Launch(spec), Reason::OnDemandAboveFloor, "web")
}

#[test]
fn the_template_name_is_a_valid_template_name_and_a_function_of_the_configuration_name() {
    // GIVEN launch configuration names with characters and lengths templates refuse
    let long = "x".repeat(255);
    for name in ["web-lc", "web lc: v2 (prod)", long.as_str(), "ünïcode"] {
        let t = template_name(name);
        // THEN each name is a valid template name, stable, and its own
        assert!(t.len() <= 128 && t.len() >= 3, "{t}");
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "().-/_".contains(c)),
            "{t}"
        );
        assert_eq!(t, template_name(name));
    }
    assert_ne!(template_name("web lc"), template_name("web_lc"));
    assert!(template_name("web-lc").starts_with("spotswap-lc-web-lc-"));
}

/// A change to a configuration, and the field it makes inexpressible.
type Case = (fn(&mut LaunchConfig), &'static str);

#[test]
fn settings_a_template_cannot_express_are_named() {
    // GIVEN configurations with host tenancy, ClassicLink and a spot price
    let cases: [Case; 4] = [
        (
            |c| c.placement_tenancy = Some("host".into()),
            "PlacementTenancy host",
        ),
        (
            |c| c.classic_link_vpc_id = Some("vpc-1".into()),
            "ClassicLinkVPCId",
        ),
        (
            |c| c.classic_link_security_groups = vec!["sg-1".into()],
            "ClassicLinkVPCId",
        ),
        (|c| c.spot_price = Some("0.05".into()), "SpotPrice 0.05"),
    ];
    for (edit, field) in cases {
        let mut c = lc("web-lc");
        edit(&mut c);
        // THEN each is unsupported, the field named
        let why = c.unsupported().expect(field);
        assert!(why.contains(field) && why.contains("web-lc"), "{why}");
    }
    // AND dedicated tenancy, a public IP, IMDSv2 and the rest are fine
    let mut ok = lc("web-lc");
    ok.placement_tenancy = Some("dedicated".into());
    ok.associate_public_ip = Some(true);
    assert_eq!(ok.unsupported(), None);
}

#[test]
fn an_lc_group_launches_from_the_found_template_or_the_one_it_creates() {
    // GIVEN an LC group whose template exists
    let found = LcTemplate {
        id: "lt-9".into(),
        name: template_name("web-lc"),
        launch_configuration: "web-lc".into(),
    };
    let g = group(Some(FromLaunchConfig::new(
        "web-lc",
        Some(lc("web-lc")),
        Some(found),
    )));
    // THEN it launches from it by id, version 1, and creates nothing
    let t = crate::plan::blockers::swappable_template(&g).unwrap();
    assert_eq!((t.id.as_deref(), t.version.as_str()), (Some("lt-9"), "1"));
    let mut actions = vec![launch()];
    ensure_template(&g, &mut actions);
    assert_eq!(actions.len(), 1);

    // GIVEN the same group without a template
    let g = group(Some(FromLaunchConfig::new("web-lc", Some(lc("web-lc")), None)));
    // THEN the launch names the template it creates just before it
    let t = crate::plan::blockers::swappable_template(&g).unwrap();
    assert_eq!(t.name.as_deref(), Some(template_name("web-lc").as_str()));
    let mut actions = vec![
        Action::new(ActionKind::Wait, Reason::WaitingForLaunch, "web"),
        launch(),
    ];
    ensure_template(&g, &mut actions);
    assert_eq!(actions.len(), 3);
    assert_eq!(actions[1].reason, Reason::TemplateFromLaunchConfiguration);
    assert!(
        matches!(&actions[1].kind, ActionKind::CreateTemplate { template_name: n, config } if *n == template_name("web-lc") && config.name == "web-lc")
    );
    // AND without a launch, no template is made
    let mut waits = vec![Action::new(ActionKind::Wait, Reason::AtRiskFloor, "web")];
    ensure_template(&g, &mut waits);
    assert_eq!(waits.len(), 1);
}

#[test]
fn an_unread_missing_or_inexpressible_configuration_skips_the_group_with_its_name() {
    let mut host = lc("web-lc");
    host.placement_tenancy = Some("host".into());
    for (from, detail) in [
        (None, "not read"),
        (
            Some(FromLaunchConfig::new("web-lc", None, None)),
            "does not list it",
        ),
        (
            Some(FromLaunchConfig::new("web-lc", Some(host), None)),
            "PlacementTenancy host",
        ),
    ] {
        let (reason, why) = crate::plan::blockers::swappable_template(&group(from)).unwrap_err();
        assert_eq!(reason, Reason::LaunchConfigurationNotSupported);
        let why = why.unwrap();
        assert!(why.contains("web-lc") && why.contains(detail), "{why}");
    }
}

#[test]
fn the_reaper_deletes_only_templates_whose_configuration_no_group_uses() {
    // GIVEN templates of two configurations, one used by a group (managed or not)
    let t = |lc: &str, id: &str| LcTemplate {
        id: id.into(),
        name: template_name(lc),
        launch_configuration: lc.into(),
    };
    let groups = vec![group(None)];
    let actions = reap_templates(&groups, &[t("web-lc", "lt-1"), t("old-lc", "lt-2")]);
    // THEN only the unused one is deleted
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].reason, Reason::LaunchConfigurationUnused);
    assert_eq!(
        actions[0].kind,
        ActionKind::DeleteTemplate {
            template_id: "lt-2".into(),
            launch_configuration: "old-lc".into()
        }
    );
    // AND with no group at all, both go
    assert_eq!(
        reap_templates(&[], &[t("web-lc", "lt-1"), t("old-lc", "lt-2")]).len(),
        2
    );
}

#[test]
fn a_cycle_creates_the_template_just_before_the_first_launch_and_launches_from_it() {
    // GIVEN an LC group of two on-demand instances, no template made yet
    let fleet = crate::testkit::Fleet::new()
        .desired(2)
        .on_demand("i-a", crate::testkit::AZS[0])
        .on_demand("i-b", crate::testkit::AZS[1])
        .with_group(|g| {
            g.launch_source = LaunchSource::LaunchConfiguration("web-lc".into());
            g.from_launch_config = Some(FromLaunchConfig::new("web-lc", Some(lc("web-lc")), None));
        });
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the template is created, then the launch names it
    let kinds: Vec<&str> = plan.actions.iter().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, ["create-template", "launch"], "{:?}", plan.actions);
    let ActionKind::Launch(spec) = &plan.actions[1].kind else {
        unreachable!()
    };
    assert_eq!(
        spec.launch_template.name.as_deref(),
        Some(template_name("web-lc").as_str())
    );
    assert_eq!(spec.launch_template.version, "1");
}
