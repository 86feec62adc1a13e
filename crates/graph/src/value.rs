use serde::Serialize;

/// What a node produces: a tensor of some shape, or, for the shape checks FX records as
/// nodes, a Python value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Value {
    /// A tensor of this shape.
    Tensor(Vec<usize>),
    /// A `torch.Size`.
    Size(Vec<usize>),
    /// An `int`.
    Int(i64),
    /// A `bool`.
    Bool(bool),
    /// `None`.
    None,
    /// A tuple.
    Tuple(Vec<Value>),
}

impl Value {
    /// The tensor's shape, if this is a tensor.
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            Value::Tensor(shape) => Some(shape),
            _ => None,
        }
    }

    /// The Python type name (`Tensor`, `Size`, `int`, `bool`, `NoneType`, `tuple`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Tensor(_) => "Tensor",
            Value::Size(_) => "Size",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
            Value::None => "NoneType",
            Value::Tuple(_) => "tuple",
        }
    }

    /// The int, or why this is not one.
    pub(crate) fn int(&self) -> std::result::Result<i64, String> {
        match self {
            Value::Int(v) => Ok(*v),
            other => Err(format!("expected an int, got {other}")),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Tensor(shape) => write!(f, "Tensor{shape:?}"),
            Value::Size(shape) => write!(f, "torch.Size({shape:?})"),
            Value::Int(v) => write!(f, "int {v}"),
            Value::Bool(v) => write!(f, "bool {}", if *v { "True" } else { "False" }),
            Value::None => write!(f, "None"),
            Value::Tuple(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "tuple ({})", items.join(", "))
            }
        }
    }
}

impl Value {
    /// The tensor's shape, or why this is not a tensor.
    pub fn tensor_shape(&self) -> std::result::Result<&[usize], String> {
        self.shape()
            .ok_or_else(|| format!("expected a tensor, got {self}"))
    }
}
