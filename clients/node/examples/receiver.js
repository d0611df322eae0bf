//Requires
var Agent = require('@netcluster/client').NCAgent;
//Create client
var agent = new Agent();
//connect to channel
agent.connect('B', function () {
    //assigns listener to on msg
    agent.on('log', function (msg) {
    console.log('A called:' + JSON.stringify(msg));
    agent.disconnect();
    });
});
