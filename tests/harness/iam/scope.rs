//! CloudFormation intrinsic functions, evaluated once per scenario: a combination of the
//! parameters that the template's `Conditions` depend on.

use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Pseudo parameters, as one example stack sees them.
pub(super) const PSEUDO: &[(&str, &str)] = &[
    ("AWS::Partition", "aws"),
    ("AWS::Region", "us-east-1"),
    ("AWS::AccountId", "123456789012"),
    ("AWS::URLSuffix", "amazonaws.com"),
    ("AWS::StackName", "spotswap"),
    (
        "AWS::StackId",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/spotswap/1",
    ),
    ("AWS::NotificationARNs", ""),
];

/// The intrinsic function a value calls, if any: `(name, argument)`, e.g. `("Fn::Sub", …)`.
pub(super) fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let name = if tag == "Ref" || tag == "Condition" {
                tag.to_string()
            } else {
                format!("Fn::{tag}")
            };
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| (k.to_string(), arg))
        }
        _ => None,
    }
}

pub(super) fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // An unquoted `Null:` condition operator parses as a YAML null.
        Value::Null => "Null".to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// One scenario: parameter values and the conditions they give.
pub(super) struct Scope<'a> {
    template: &'a Value,
    params: BTreeMap<String, Value>,
    pub(super) conditions: BTreeMap<String, bool>,
}

impl Scope<'_> {
    fn resources(&self) -> Option<&Mapping> {
        self.template.get("Resources").and_then(Value::as_mapping)
    }

    fn is_resource(&self, id: &str) -> bool {
        self.resources().is_some_and(|r| r.contains_key(id))
    }

    /// Evaluate every intrinsic in `v`. `Ok(None)` is `AWS::NoValue`.
    pub(super) fn resolve(&self, v: &Value) -> Result<Option<Value>, String> {
        if let Some((name, arg)) = intrinsic(v) {
            return self.call(&name, arg);
        }
        match v {
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(self.resolve(item)?);
                }
                Ok(Some(Value::Sequence(out)))
            }
            Value::Mapping(m) => {
                let mut out = Mapping::new();
                for (k, val) in m {
                    if let Some(r) = self.resolve(val)? {
                        out.insert(Value::String(as_text(k)), r);
                    }
                }
                Ok(Some(Value::Mapping(out)))
            }
            Value::Tagged(t) => Err(format!("unknown tag {}", t.tag)),
            other => Ok(Some(other.clone())),
        }
    }

    fn resolve_str(&self, v: &Value) -> Result<String, String> {
        match self.resolve(v)? {
            Some(Value::Sequence(_)) | Some(Value::Mapping(_)) => {
                Err(format!("expected a string, got {v:?}"))
            }
            Some(s) => Ok(as_text(&s)),
            None => Err("AWS::NoValue where a string is needed".into()),
        }
    }

    fn resolve_list(&self, v: &Value) -> Result<Vec<String>, String> {
        match self.resolve(v)? {
            Some(Value::Sequence(items)) => Ok(items.iter().map(as_text).collect()),
            _ => Err(format!("expected a list, got {v:?}")),
        }
    }

    fn args<'v>(arg: &'v Value, n: usize, name: &str) -> Result<&'v [Value], String> {
        match arg.as_sequence() {
            Some(s) if s.len() == n => Ok(s),
            _ => Err(format!("{name} takes {n} arguments")),
        }
    }

    fn reference(&self, name: &str) -> Result<Option<Value>, String> {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some((_, v)) = PSEUDO.iter().find(|(k, _)| *k == name) {
            return Ok(Some(Value::String((*v).into())));
        }
        if let Some(v) = self.params.get(name) {
            return Ok(Some(v.clone()));
        }
        if self.is_resource(name) {
            return Ok(Some(Value::String(format!("REF.{name}"))));
        }
        Err(format!("Ref to unknown {name}"))
    }

    fn call(&self, name: &str, arg: &Value) -> Result<Option<Value>, String> {
        let s = |x: String| Ok(Some(Value::String(x)));
        match name {
            "Ref" => self.reference(&as_text(arg)),
            "Fn::GetAtt" => match arg {
                Value::String(x) => s(format!("GETATT.{x}")),
                Value::Sequence(p) => s(format!(
                    "GETATT.{}",
                    p.iter().map(as_text).collect::<Vec<_>>().join(".")
                )),
                _ => Err("bad Fn::GetAtt".into()),
            },
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::Sequence(p) if p.len() == 2 => {
                        (as_text(&p[0]), p[1].as_mapping().cloned().unwrap_or_default())
                    }
                    other => (as_text(other), Mapping::new()),
                };
                s(self.substitute(&text, &vars)?)
            }
            "Fn::Join" => {
                let a = Self::args(arg, 2, name)?;
                s(self.resolve_list(&a[1])?.join(&self.resolve_str(&a[0])?))
            }
            "Fn::Split" => {
                let a = Self::args(arg, 2, name)?;
                let (delimiter, text) = (self.resolve_str(&a[0])?, self.resolve_str(&a[1])?);
                let parts = text.split(delimiter.as_str()).map(|p| Value::String(p.into()));
                Ok(Some(Value::Sequence(parts.collect())))
            }
            "Fn::Select" => {
                let a = Self::args(arg, 2, name)?;
                let i: usize = self
                    .resolve_str(&a[0])?
                    .parse()
                    .map_err(|_| "bad Fn::Select index")?;
                let list = self.resolve_list(&a[1])?;
                list.get(i)
                    .cloned()
                    .map_or_else(|| Err(format!("Fn::Select index {i} out of range")), s)
            }
            "Fn::If" => {
                let a = Self::args(arg, 3, name)?;
                let cond = as_text(&a[0]);
                match self.conditions.get(&cond) {
                    Some(true) => self.resolve(&a[1]),
                    Some(false) => self.resolve(&a[2]),
                    None => Err(format!("Fn::If on unknown condition {cond}")),
                }
            }
            "Fn::FindInMap" => {
                let a = Self::args(arg, 3, name)?;
                let keys = [
                    self.resolve_str(&a[0])?,
                    self.resolve_str(&a[1])?,
                    self.resolve_str(&a[2])?,
                ];
                let v = self
                    .template
                    .get("Mappings")
                    .and_then(|m| m.get(&keys[0]))
                    .and_then(|m| m.get(&keys[1]))
                    .and_then(|m| m.get(&keys[2]));
                v.map(|v| Some(v.clone()))
                    .ok_or_else(|| format!("Fn::FindInMap {keys:?} not found"))
            }
            other => Err(format!("{other} cannot be evaluated here")),
        }
    }

    /// `Fn::Sub`: `${Var}` from `vars`, pseudo parameters, parameters, `${Res.Attr}`, `${Res}`.
    fn substitute(&self, text: &str, vars: &Mapping) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or("unclosed ${ in Fn::Sub")? + start;
            let var = &rest[start + 2..end];
            if let Some(literal) = var.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(var) {
                out.push_str(&self.resolve_str(v)?);
            } else if var.contains('.') && !var.starts_with("AWS::") {
                out.push_str(&format!("GETATT.{var}"));
            } else {
                match self.reference(var)? {
                    Some(Value::Sequence(_)) => return Err(format!("list parameter {var} inside Fn::Sub")),
                    Some(v) => out.push_str(&as_text(&v)),
                    None => return Err("AWS::NoValue inside Fn::Sub".into()),
                }
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn condition(&self, v: &Value, defs: &Mapping, depth: usize) -> Result<bool, String> {
        if depth > 32 {
            return Err("conditions nest too deep".into());
        }
        let (name, arg) = intrinsic(v)
            .or_else(|| v.get("Condition").map(|c| ("Condition".to_string(), c)))
            .ok_or_else(|| format!("not a condition: {v:?}"))?;
        let list = |n| Self::args(arg, n, &name);
        match name.as_str() {
            "Condition" => {
                let target = as_text(arg);
                let def = defs
                    .get(&target)
                    .ok_or_else(|| format!("unknown condition {target}"))?;
                self.condition(def, defs, depth + 1)
            }
            "Fn::Equals" => {
                let a = list(2)?;
                Ok(self.resolve(&a[0])? == self.resolve(&a[1])?)
            }
            "Fn::Not" => Ok(!self.condition(&list(1)?[0], defs, depth + 1)?),
            "Fn::And" | "Fn::Or" => {
                let items = arg.as_sequence().ok_or("Fn::And/Fn::Or take a list")?;
                let mut values = Vec::with_capacity(items.len());
                for c in items {
                    values.push(self.condition(c, defs, depth + 1)?);
                }
                Ok(if name == "Fn::And" {
                    values.iter().all(|b| *b)
                } else {
                    values.iter().any(|b| *b)
                })
            }
            other => Err(format!("{other} is not a condition function")),
        }
    }
}

/// Parameter names that `v` refers to (`Ref`, and variables of `Fn::Sub`).
pub(super) fn parameter_refs(v: &Value, params: &Mapping, out: &mut BTreeSet<String>) {
    if let Some((name, arg)) = intrinsic(v) {
        match name.as_str() {
            "Ref" => {
                let target = as_text(arg);
                if params.contains_key(target.as_str()) {
                    out.insert(target);
                }
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::Sequence(p) if p.len() == 2 => (as_text(&p[0]), Some(&p[1])),
                    other => (as_text(other), None),
                };
                for piece in text.split("${").skip(1) {
                    let var = piece.split('}').next().unwrap_or_default();
                    if params.contains_key(var) && vars.and_then(|m| m.get(var)).is_none() {
                        out.insert(var.to_string());
                    }
                }
                if let Some(vars) = vars {
                    parameter_refs(vars, params, out);
                }
            }
            _ => parameter_refs(arg, params, out),
        }
        return;
    }
    match v {
        Value::Sequence(items) => items.iter().for_each(|i| parameter_refs(i, params, out)),
        Value::Mapping(m) => m.values().for_each(|i| parameter_refs(i, params, out)),
        _ => {}
    }
}

/// Every combination of the parameters that `Conditions` depend on, each with a label.
pub(super) fn scenarios(t: &Value) -> Vec<(String, Scope<'_>)> {
    let params = t
        .get("Parameters")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let defs = t
        .get("Conditions")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let is_list = |p: &Value| {
        p.get("Type")
            .and_then(Value::as_str)
            .is_some_and(|ty| ty.contains("List"))
    };
    let value_of = |p: &Value, raw: String| {
        if is_list(p) {
            Value::Sequence(raw.split(',').map(|x| Value::String(x.trim().into())).collect())
        } else {
            Value::String(raw)
        }
    };
    let mut base = BTreeMap::new();
    for (name, p) in &params {
        let default = p.get("Default").map(as_text).unwrap_or_else(|| "example".into());
        base.insert(as_text(name), value_of(p, default));
    }
    let mut deciding = BTreeSet::new();
    parameter_refs(&Value::Mapping(defs.clone()), &params, &mut deciding);
    // Each deciding parameter takes its allowed values, or its default and one other value.
    let mut combos: Vec<Vec<(String, String)>> = vec![vec![]];
    for name in &deciding {
        let p = &params[name.as_str()];
        let choices: Vec<String> = match p.get("AllowedValues").and_then(Value::as_sequence) {
            Some(allowed) => allowed.iter().map(as_text).collect(),
            None => {
                let default = p.get("Default").map(as_text).unwrap_or_default();
                let other = if default.is_empty() {
                    "example".to_string()
                } else {
                    String::new()
                };
                vec![default, other]
            }
        };
        combos = combos
            .iter()
            .flat_map(|c| {
                choices.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|combo| {
            let mut values = base.clone();
            for (name, raw) in &combo {
                values.insert(name.clone(), value_of(&params[name.as_str()], raw.clone()));
            }
            let mut scope = Scope {
                template: t,
                params: values,
                conditions: BTreeMap::new(),
            };
            let mut conditions = BTreeMap::new();
            for (name, def) in &defs {
                // A condition that cannot be evaluated counts as true: more is checked, not less.
                conditions.insert(as_text(name), scope.condition(def, &defs, 0).unwrap_or(true));
            }
            scope.conditions = conditions;
            let label = combo
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            (
                if label.is_empty() {
                    "defaults".into()
                } else {
                    label
                },
                scope,
            )
        })
        .collect()
}
