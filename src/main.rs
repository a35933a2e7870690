mod layer;
mod store;
fn main() {}
