package main

// suites lists every benchmark `make bench` runs, by area of the brief.
var suites = []suite{}

// ratios are the brief's ratio goals, each computed from two medians of the
// same run.
var ratios = []ratio{}
