package metrics

// CheckExposition is checkExposition for the tests of package
// metrics_test, which scrape a server.
var CheckExposition = checkExposition
