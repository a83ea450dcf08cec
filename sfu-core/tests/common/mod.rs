pub(crate) mod layered;
