pub mod prefix;
