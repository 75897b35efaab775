//! Filters as the client wrote them (spec §5.3, design §1.4): the raw tree
//! of groups and `{attribute: {operator: value}}` ([`RawFilter`], from
//! [`parse_list`]), within the limits of [`super::limits`]. Nothing here
//! knows the catalog; `bind.rs` binds the tree to a datasource.

use serde_json::Value;

use super::limits::{MAX_DEPTH, MAX_FILTER_NODES, MAX_FILTER_VALUES, MAX_LIST};

macro_rules! operators {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A filter operator.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Op { $($variant),* }

        impl Op {
            /// Every operator.
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];

            /// The operator with this wire name.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)* _ => None }
            }

            /// The wire name.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
    };
}

operators! {
    Is = "is", Not = "not", Empty = "empty", NotEmpty = "notEmpty", Nct = "nct", Like = "like",
    Sw = "sw", Ew = "ew", In = "in", Nin = "nin", HasAll = "hasAll", HasAny = "hasAny",
    NotAny = "notAny", Eq = "eq", Ne = "ne", Null = "null", NotNull = "notNull", Gt = "gt",
    Gte = "gte", Lt = "lt", Lte = "lte", Bn = "bn", After = "after", Before = "before", On = "on",
    OnOrAfter = "onOrAfter", OnOrBefore = "onOrBefore", NotOn = "notOn", Today = "today",
    Yesterday = "yesterday", Tomorrow = "tomorrow", Last7Days = "last7Days",
    Next7Days = "next7Days", ThisWeek = "thisWeek", ThisMonth = "thisMonth",
    ThisYear = "thisYear", InThePast = "inThePast", InTheFuture = "inTheFuture",
    IsTrue = "isTrue", IsFalse = "isFalse",
}

/// A group key, whatever its case: `and`/`allOf`, `or`/`anyOf`,
/// `not`/`noneOf` (design §1.4).
fn group_of(key: &str) -> Option<Group> {
    let is = |name: &str| key.eq_ignore_ascii_case(name);
    if is("and") || is("allOf") {
        Some(Group::And)
    } else if is("or") || is("anyOf") {
        Some(Group::Or)
    } else if is("not") || is("noneOf") {
        Some(Group::Not)
    } else {
        None
    }
}

#[derive(Clone, Copy)]
enum Group {
    And,
    Or,
    Not,
}

/// A filter as written: groups and `{attribute: {operator: value}}`.
#[derive(Clone, Debug, PartialEq)]
pub enum RawFilter {
    And(Vec<RawFilter>),
    Or(Vec<RawFilter>),
    Not(Vec<RawFilter>),
    Cond { attr: String, op: Op, value: Value },
}

/// What one query's filter has used of its limits.
#[derive(Debug, Default)]
pub struct Budget {
    nodes: usize,
    values: usize,
}

impl Budget {
    fn node(&mut self) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_FILTER_NODES {
            return Err(format!("more than {MAX_FILTER_NODES} filters and groups."));
        }
        Ok(())
    }

    fn values(&mut self, n: usize) -> Result<(), String> {
        self.values += n;
        if self.values > MAX_FILTER_VALUES {
            return Err(format!("more than {MAX_FILTER_VALUES} values in all."));
        }
        Ok(())
    }
}

/// Parses a list of filters (one object stands for a list of one) at
/// nesting `depth` (the top level is 1).
pub fn parse_list(
    value: &Value,
    depth: usize,
    budget: &mut Budget,
) -> Result<Vec<RawFilter>, String> {
    match value {
        Value::Null if depth == 1 => Ok(Vec::new()),
        Value::Array(list) => list.iter().map(|item| parse_node(item, depth, budget)).collect(),
        Value::Object(_) => Ok(vec![parse_node(value, depth, budget)?]),
        _ => Err("must be a list of filters such as [{\"name\": {\"is\": \"Dana\"}}].".into()),
    }
}

fn parse_node(value: &Value, depth: usize, budget: &mut Budget) -> Result<RawFilter, String> {
    let Value::Object(map) = value else {
        return Err(format!("a filter must be an object, not {}.", kind_of(value)));
    };
    if map.is_empty() {
        return Err("an empty filter {} says nothing: remove it.".into());
    }
    let mut parts = Vec::with_capacity(map.len());
    for (key, inner) in map {
        budget.node()?;
        match (key.as_str(), inner, group_of(key)) {
            (name, Value::Array(list), Some(group)) => {
                if depth >= MAX_DEPTH {
                    return Err(format!("filter groups nest deeper than {MAX_DEPTH} levels."));
                }
                if list.is_empty() {
                    return Err(format!("the group {name:?} has no filters."));
                }
                let children = parse_list(inner, depth + 1, budget)?;
                parts.push(match group {
                    Group::And => RawFilter::And(children),
                    Group::Or => RawFilter::Or(children),
                    Group::Not => RawFilter::Not(children),
                });
            }
            (attr, Value::Object(ops), _) => {
                if ops.is_empty() {
                    return Err(format!("the filter on {attr} has no operator."));
                }
                for (name, value) in ops {
                    let op = Op::parse(name).ok_or_else(|| {
                        format!("unknown operator {name:?} on {attr}; known: {}.", operator_names())
                    })?;
                    let n = match value {
                        Value::Array(list) if list.len() > MAX_LIST => {
                            return Err(format!(
                                "{attr} {name}: more than {MAX_LIST} values in one list."
                            ));
                        }
                        Value::Array(list) => list.len(),
                        _ => 1,
                    };
                    budget.values(n)?;
                    if ops.len() > 1 {
                        budget.node()?;
                    }
                    parts.push(RawFilter::Cond { attr: attr.to_owned(), op, value: value.clone() });
                }
            }
            (attr, _, _) => {
                return Err(format!(
                    "the filter on {attr} must be an object {{\"operator\": value}}, or a group \"and\"/\"or\"/\"not\" (\"allOf\"/\"anyOf\"/\"noneOf\") with a list."
                ));
            }
        }
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { RawFilter::And(parts) })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The operator names, for messages.
pub fn operator_names() -> String {
    Op::ALL.iter().map(|op| op.name()).collect::<Vec<_>>().join(", ")
}
