//! Test harness for spotswap: moto fleets, the fault and market proxy, the Lambda runtime and
//! the IAM checker of `template.yaml`.

pub mod fleet;
/// The least-privilege checker of `template.yaml` (DESIGN.md §10): parses the template,
/// evaluates its intrinsics under every parameter combination that changes a condition, and
/// reports each policy statement that breaks a rule. `tests/integration/template_iam.rs`
/// runs it on the committed template and on planted bad statements.
pub mod iam;
pub mod lambda;
pub mod proxy;
