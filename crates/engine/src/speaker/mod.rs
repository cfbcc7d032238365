//! The speaker encoder of Base checkpoints: log-mel front end and ECAPA-TDNN → x-vector.
