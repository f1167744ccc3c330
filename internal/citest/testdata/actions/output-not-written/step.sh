#!/usr/bin/env bash
tf_output other "$x"
