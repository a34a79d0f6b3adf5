//! The least-privilege check of `template.yaml` (DESIGN.md §10), run by `make test`: the
//! committed template passes, and each bad statement planted in it is reported under its rule.
//! The checker, and the rules it applies, are in `tests/harness/iam/` (`spotswap_tests::iam`).

use serde_yaml::Value;
use spotswap_tests::iam::{check_template, check_value, is_read_only, is_wildcard_resource, Report};

const TEMPLATE: &str = include_str!("../../template.yaml");

fn template() -> Value {
    serde_yaml::from_str(TEMPLATE).expect("template.yaml parses as YAML")
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("test YAML parses")
}

/// The statement list of `Resources.<id>`'s first inline policy (or of its PolicyDocument).
fn statements_of<'t>(t: &'t mut Value, id: &str) -> &'t mut Vec<Value> {
    let props = t["Resources"][id]["Properties"]
        .as_mapping_mut()
        .expect("resource has Properties");
    let doc = if props.contains_key("PolicyDocument") {
        &mut props["PolicyDocument"]
    } else {
        &mut props["Policies"][0]["PolicyDocument"]
    };
    doc["Statement"].as_sequence_mut().expect("Statement is a list")
}

fn plant(id: &str, statement: &str) -> Report {
    let mut t = template();
    statements_of(&mut t, id).push(yaml(statement));
    check_value(&t)
}

fn assert_reports(report: &Report, rule: &str) {
    assert!(
        report.has(rule),
        "expected a `{rule}` finding, got:\n{}",
        report.render()
    );
}

#[test]
fn the_template_grants_no_unscoped_mutation() {
    // GIVEN template.yaml as committed
    // WHEN every policy is checked under every parameter combination that changes it
    let report = check_template(TEMPLATE).expect("template.yaml parses");
    // THEN nothing is reported, and the check did look at the three roles' statements
    assert!(
        report.findings.is_empty(),
        "template.yaml fails the IAM check:\n{}",
        report.render()
    );
    for role in [
        "RebalancerRole",
        "InterruptionHandlerRole",
        "OrphanReaperRole",
        "DeadLetterQueuePolicy",
    ] {
        assert!(
            report.holders.contains(role),
            "{role} was not checked: {:?}",
            report.holders
        );
    }
    assert!(
        report.scenarios >= 2,
        "opt-in and opt-out were not both evaluated"
    );
    assert!(
        report.statements >= 20 * report.scenarios,
        "too few statements checked: {}",
        report.statements
    );
}

#[test]
fn an_unconditioned_terminate_on_star_is_reported() {
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: ec2:TerminateInstances, Resource: '*'}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    assert_reports(&report, "terminate-untagged");
}

#[test]
fn a_subbed_wildcard_instance_arn_is_reported() {
    // `!Sub` arrives as a YAML tag; the ARN it builds names every instance in every account.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: [ec2:StopInstances], Resource: !Sub 'arn:${AWS::Partition}:ec2:*:*:instance/*'}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    // The long form of the same intrinsic is read the same way.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: ec2:RebootInstances, Resource: {'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*'}}",
    );
    assert_reports(&report, "mutation-on-wildcard");
}

#[test]
fn a_terminate_scoped_by_someone_elses_tag_is_reported() {
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: ec2:TerminateInstances, Resource: '*', Condition: {'Null': {'ec2:ResourceTag/team': 'false'}}}",
    );
    assert!(!report.has("mutation-on-wildcard"), "{}", report.render());
    assert_reports(&report, "terminate-untagged");
}

fn plant_sam_policies(policies: &str) -> Report {
    let mut t = template();
    let props = t["Resources"]["OrphanReaperFunction"]["Properties"]
        .as_mapping_mut()
        .expect("function properties");
    props.insert("Policies".into(), yaml(policies));
    check_value(&t)
}

#[test]
fn a_sam_policy_template_granting_mutation_on_star_is_reported() {
    let report = plant_sam_policies("[{EC2DescribePolicy: {}}, {CloudWatchPutMetricPolicy: {}}]");
    assert_reports(&report, "mutation-on-wildcard");
    assert!(
        report
            .findings
            .keys()
            .any(|f| f.at.contains("CloudWatchPutMetricPolicy")),
        "{}",
        report.render()
    );
    // A template scoped to one of our resources is understood and passes.
    let report =
        plant_sam_policies("[{SQSSendMessagePolicy: {QueueName: !GetAtt DeadLetterQueue.QueueName}}]");
    assert!(report.findings.is_empty(), "{}", report.render());
    // The same template on every queue does not.
    let report = plant_sam_policies("[{SQSSendMessagePolicy: {QueueName: '*'}}]");
    assert_reports(&report, "mutation-on-wildcard");
}

#[test]
fn unknown_sam_templates_and_managed_policies_are_reported() {
    assert_reports(
        &plant_sam_policies("[{AmazonEC2FullAccessPolicy: {}}]"),
        "sam-policy-template",
    );
    assert_reports(&plant_sam_policies("AmazonEC2FullAccess"), "managed-policy");
    let mut t = template();
    let role = t["Resources"]["RebalancerRole"]["Properties"]
        .as_mapping_mut()
        .expect("role properties");
    role.insert(
        "ManagedPolicyArns".into(),
        yaml("[arn:aws:iam::aws:policy/AmazonEC2FullAccess]"),
    );
    assert_reports(&check_value(&t), "managed-policy");
}

#[test]
fn star_actions_are_reported_even_with_a_condition() {
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: ['ec2:*'], Resource: '*', Condition: {StringEquals: {'aws:RequestedRegion': us-east-1}}}",
    );
    assert_reports(&report, "action-all");
    assert_reports(
        &plant("RebalancerRole", "{Effect: Allow, Action: '*', Resource: '*'}"),
        "action-all",
    );
    // A wildcard that is not Describe* counts as mutating (ec2:Get* includes GetPasswordData).
    assert_reports(
        &plant(
            "RebalancerRole",
            "{Effect: Allow, Action: 'ec2:Get*', Resource: '*'}",
        ),
        "mutation-on-wildcard",
    );
    assert!(plant(
        "RebalancerRole",
        "{Effect: Allow, Action: 'ec2:Describe*', Resource: '*'}"
    )
    .findings
    .is_empty());
}

#[test]
fn a_condition_that_one_branch_of_if_drops_is_reported() {
    // In opt-out mode the condition is gone: the statement is unscoped in that scenario.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: autoscaling:SuspendProcesses, Resource: '*', Condition: !If [OptOut, !Ref 'AWS::NoValue', {StringEquals: {'autoscaling:ResourceTag/spotswap:enabled': 'true'}}]}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    assert!(
        report.render().contains("Mode=\"opt-out\""),
        "{}",
        report.render()
    );
}

#[test]
fn group_mutations_must_be_scoped_by_the_enabled_tag() {
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: autoscaling:UpdateAutoScalingGroup, Resource: '*', Condition: {StringEquals: {'autoscaling:ResourceTag/team': web}}}",
    );
    assert_reports(&report, "asg-untagged");
    // Tag writes must not be able to flip spotswap:enabled itself.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: autoscaling:CreateOrUpdateTags, Resource: '*', Condition: {StringEquals: {'autoscaling:ResourceTag/spotswap:enabled': 'true'}, 'ForAllValues:StringLike': {'aws:TagKeys': ['spotswap:*']}}}",
    );
    assert_reports(&report, "asg-untagged");
}

#[test]
fn launches_must_require_our_tag_on_the_instance() {
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: ec2:RunInstances, Resource: !Sub 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*'}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    assert_reports(&report, "launch-untagged");
    // Launch inputs alone are harmless only next to the tag-gated instance statement.
    let mut t = template();
    let gated = ["LaunchOnlyTaggedInstances", "LaunchOnlyTaggedBatches"];
    statements_of(&mut t, "SwapPolicy").retain(|s| {
        !s.get("Sid")
            .and_then(Value::as_str)
            .is_some_and(|sid| gated.contains(&sid))
    });
    assert_reports(&check_value(&t), "launch-inputs");
}

#[test]
fn pass_role_and_other_iam_mutations_are_reported() {
    let report = plant("RebalancerRole", "{Effect: Allow, Action: iam:PassRole, Resource: !Sub 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/app'}");
    assert_reports(&report, "pass-role");
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: iam:CreateServiceLinkedRole, Resource: '*', Condition: {StringLike: {'iam:AWSServiceName': '*'}}}",
    );
    assert_reports(&report, "service-linked-role");
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: iam:AttachRolePolicy, Resource: 'arn:aws:iam::123456789012:role/x'}",
    );
    assert_reports(&report, "iam-mutation");
}

#[test]
fn create_tags_outside_launch_needs_our_keys() {
    let report = plant(
        "InterruptionHandlerRole",
        "{Effect: Allow, Action: ec2:CreateTags, Resource: '*', Condition: {'Null': {'ec2:ResourceTag/aws:autoscaling:groupName': 'false'}}}",
    );
    assert_reports(&report, "create-tags");
    // spot alone does not do: the keys must be limited too
    let report = plant(
        "InterruptionHandlerRole",
        "{Effect: Allow, Action: ec2:CreateTags, Resource: '*', Condition: {StringEquals: {'ec2:InstanceMarketType': spot}}}",
    );
    assert_reports(&report, "create-tags");
}

#[test]
fn launch_templates_are_created_and_deleted_only_with_our_tag() {
    for (statement, rule) in [
        ("{Effect: Allow, Action: ec2:DeleteLaunchTemplate, Resource: '*', Condition: {'Null': {'ec2:ResourceTag/Team': 'false'}}}", "template-untagged"),
        ("{Effect: Allow, Action: ec2:CreateLaunchTemplate, Resource: '*', Condition: {'Null': {'aws:RequestTag/Team': 'false'}}}", "template-untagged"),
        ("{Effect: Allow, Action: ec2:CreateTags, Resource: '*', Condition: {StringEquals: {'ec2:CreateAction': CreateLaunchTemplate}}}", "create-tags"),
    ] {
        assert_reports(&plant("OrphanReaperRole", statement), rule);
    }
}

#[test]
fn not_action_and_roles_shared_or_missing_are_reported() {
    assert_reports(
        &plant(
            "RebalancerRole",
            "{Effect: Allow, NotAction: iam:*, Resource: '*'}",
        ),
        "not-action",
    );
    for role in [Some("!GetAtt RebalancerRole.Arn"), None] {
        let mut t = template();
        let f = t["Resources"]["OrphanReaperFunction"]["Properties"]
            .as_mapping_mut()
            .expect("function properties");
        match role {
            Some(r) => f.insert("Role".into(), yaml(r)),
            None => f.remove("Role"),
        };
        assert_reports(&check_value(&t), "function-role");
    }
}

#[test]
fn a_parameter_that_accepts_star_in_a_resource_is_reported() {
    let mut t = template();
    let p = t["Parameters"]["EventBusName"]
        .as_mapping_mut()
        .expect("EventBusName parameter");
    p.insert("AllowedPattern".into(), ".+".into());
    assert_reports(&check_value(&t), "parameter-wildcard");
}

#[test]
fn arns_are_classified() {
    assert!(is_wildcard_resource("*"));
    assert!(is_wildcard_resource("arn:aws:ec2:*:*:instance/*"));
    assert!(is_wildcard_resource(
        "arn:aws:ec2:us-east-1:123456789012:instance/*"
    ));
    assert!(is_wildcard_resource(
        "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:*:autoScalingGroupName/*"
    ));
    assert!(!is_wildcard_resource(
        "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:*:autoScalingGroupName/web"
    ));
    assert!(!is_wildcard_resource(
        "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:*"
    ));
    assert!(!is_wildcard_resource(
        "arn:aws:events:us-east-1:1:event-bus/default"
    ));
    assert!(!is_wildcard_resource("GETATT.DeadLetterQueue.Arn"));
    assert!(is_wildcard_resource("not-an-arn"));
    assert!(is_read_only("ec2:DescribeInstances") && is_read_only("pricing:GetProducts"));
    assert!(
        !is_read_only("ec2:GetPasswordData") && !is_read_only("ec2:CreateTags") && !is_read_only("ec2:Get*")
    );
}

#[test]
fn a_role_that_trusts_more_than_lambda_is_reported() {
    let mut t = template();
    let trust =
        &mut t["Resources"]["OrphanReaperRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    trust["Principal"] = yaml("{AWS: 'arn:aws:iam::111122223333:root'}");
    assert_reports(&check_value(&t), "trust");
}

/// Every group record the core writes (or clears) is a tag key the template lets the roles
/// write and delete: a key missing from a statement's `aws:TagKeys` is AccessDenied on AWS,
/// which moto never checks.
#[test]
fn every_group_record_key_is_granted_by_the_template() {
    use spotswap_core::records::{max_raised_tags, no_capacity_tags, record_interruption_tags};
    use spotswap_core::{tags, Pool, Timestamp};
    let pool = Pool::new("m5.large", "us-east-1a");
    let now = Timestamp::from_unix(1_767_225_600);
    let mut keys: Vec<String> = max_raised_tags(1, 2).into_iter().map(|(k, _)| k).collect();
    keys.extend(
        record_interruption_tags(&pool, Some(now), "i-1@1", "1:1", Some(now))
            .into_iter()
            .map(|(k, _)| k),
    );
    keys.extend(no_capacity_tags(&[pool], now).into_iter().map(|(k, _)| k));
    keys.push(tags::SHELTERED_UNTIL.to_string());
    keys.push(tags::DISTRIBUTION_RAISED_FROM.to_string());
    let lists: Vec<Vec<String>> = TEMPLATE
        .lines()
        .filter(|l| l.contains("aws:TagKeys") && l.contains(tags::MAX_RAISED_FROM))
        .map(|l| {
            let inner = l
                .split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map(|(i, _)| i);
            inner
                .unwrap_or_default()
                .split(',')
                .map(|k| k.trim().trim_matches('"').to_string())
                .collect()
        })
        .collect();
    assert!(
        lists.len() >= 4,
        "the record statements were not found: {lists:?}"
    );
    let glob = |pattern: &str, key: &str| match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => pattern == key,
    };
    for list in &lists {
        for key in &keys {
            assert!(
                list.iter().any(|p| glob(p, key)),
                "{key} is not granted by aws:TagKeys {list:?}"
            );
        }
    }
}

#[test]
fn autospotting_grants_exist_only_in_compat_mode_and_orphan_reaping_only_when_enabled() {
    // GIVEN template.yaml as committed
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    // THEN every grant for AutoSpotting's groups is created only with Compat=autospotting
    for id in [
        "AutoSpottingSwapPolicy",
        "AutoSpottingInterruptionPolicy",
        "AutoSpottingReapPolicy",
        "AutoSpottingMigrationPolicy",
    ] {
        assert_eq!(
            resources[id]["Condition"].as_str(),
            Some("CompatAutoSpotting"),
            "{id}"
        );
    }
    // AND the termination of AutoSpotting's orphans is only inside an !If on
    // ReapAutoSpottingOrphansEnabled, scoped by launched-by-autospotting=true
    let text = TEMPLATE;
    assert_eq!(
        text.matches("ec2:ResourceTag/launched-by-autospotting").count(),
        1
    );
    let stmts = t["Resources"]["AutoSpottingMigrationPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let gated: Vec<&Value> = stmts
        .iter()
        .filter(|s| matches!(s, Value::Tagged(tag) if tag.tag == "!If"))
        .collect();
    assert_eq!(gated.len(), 1);
    let Value::Tagged(tag) = gated[0] else {
        unreachable!()
    };
    let args = tag.value.as_sequence().unwrap();
    assert_eq!(args[0].as_str(), Some("ReapAutoSpottingOrphansEnabled"));
    assert_eq!(args[1]["Sid"].as_str(), Some("TerminateAutoSpottingOrphans"));
    assert_eq!(
        args[1]["Condition"]["StringEquals"]["ec2:ResourceTag/launched-by-autospotting"].as_str(),
        Some("true")
    );
    // AND no other statement of the template terminates on that tag
    for (id, r) in resources {
        if id.as_str() != Some("AutoSpottingMigrationPolicy") {
            assert!(
                !serde_yaml::to_string(r)
                    .unwrap()
                    .contains("launched-by-autospotting"),
                "{id:?}"
            );
        }
    }
}

#[test]
fn a_terminate_on_autospottings_tag_with_any_value_is_reported() {
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: ec2:TerminateInstances, Resource: '*', Condition: {StringLike: {'ec2:ResourceTag/launched-by-autospotting': '*'}}}",
    );
    assert_reports(&report, "terminate-untagged");
}

#[test]
fn a_function_enrolling_groups_by_autospottings_tag_is_reported_unless_autospotting_manages_them() {
    // spotswap:enabled written on a group only spotswap's own tag scopes: self-enrolment
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: autoscaling:CreateOrUpdateTags, Resource: '*', Condition: {StringEquals: {'autoscaling:ResourceTag/spotswap:enabled': 'true'}, 'ForAllValues:StringEquals': {'aws:TagKeys': ['spotswap:enabled']}}}",
    );
    assert_reports(&report, "asg-untagged");
    // a group scoped by a tag that is neither spotswap's nor AutoSpotting's
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: autoscaling:UpdateAutoScalingGroup, Resource: '*', Condition: {StringEquals: {'autoscaling:ResourceTag/team': 'true'}}}",
    );
    assert_reports(&report, "asg-untagged");
}
