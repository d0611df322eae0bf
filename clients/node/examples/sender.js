//Requires
var Agent = require('@netcluster/client').NCAgent;
//Create client
var agent = new Agent();

//Bind to local server
agent.connect('A', function () {
    function loop() {

        //Emit event
        agent.emit('log', 'TESTE');
        setTimeout(loop, 1000);
    }

    loop();

});
